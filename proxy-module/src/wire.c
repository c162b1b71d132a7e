/*
 * Typed encode/decode of protocol v1 (docs/protocol.md "Encodings").
 *
 * The writer never fails midway: it records the first error and the caller
 * learns about it once, when the request is sent. The reader likewise sets
 * `bad` on any short or out-of-range read and returns zeros afterwards, so
 * decoders read straight through and check once at the end.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_NESTING 4 /* array attributes inside array attributes: deeper is nonsense */

/* ---- writer --------------------------------------------------------------- */

void wb_init(wbuf *w) { memset(w, 0, sizeof *w); }

void wb_free(wbuf *w)
{
  if (w->p) {
    explicit_bzero(w->p, w->cap);
    free(w->p);
  }
  memset(w, 0, sizeof *w);
}

/* Grows by copying rather than realloc so the old block can be wiped: it may
 * already hold a PIN or key bytes. */
static int wb_grow(wbuf *w, size_t extra)
{
  if (w->oom) return 0;
  if (extra > SIZE_MAX / 2 - w->len) {
    w->oom = 1;
    return 0;
  }
  if (w->len + extra <= w->cap) return 1;
  size_t cap = w->cap ? w->cap : 256;
  while (cap < w->len + extra) cap *= 2;
  uint8_t *p = malloc(cap);
  if (!p) {
    w->oom = 1;
    return 0;
  }
  if (w->p) {
    memcpy(p, w->p, w->len);
    explicit_bzero(w->p, w->cap);
    free(w->p);
  }
  w->p = p;
  w->cap = cap;
  return 1;
}

void wb_raw(wbuf *w, const void *p, size_t n)
{
  if (!n || !wb_grow(w, n)) return;
  memcpy(w->p + w->len, p, n);
  w->len += n;
}

void wb_u8(wbuf *w, uint8_t v) { wb_raw(w, &v, 1); }

void wb_u16(wbuf *w, uint16_t v)
{
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  wb_raw(w, b, 2);
}

void wb_u32(wbuf *w, uint32_t v)
{
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  wb_raw(w, b, 4);
}

void wb_u64(wbuf *w, uint64_t v)
{
  wb_u32(w, (uint32_t)(v >> 32));
  wb_u32(w, (uint32_t)v);
}

void wb_ulong(wbuf *w, CK_ULONG v) { wb_u64(w, (uint64_t)v); }

void wb_bytes(wbuf *w, const void *p, size_t n)
{
  if (n > UINT32_MAX) { /* cannot be framed; the frame limit refuses it anyway */
    w->oom = 1;
    return;
  }
  wb_u32(w, (uint32_t)n);
  wb_raw(w, p, n);
}

void wb_opt_bytes(wbuf *w, const void *p, size_t n)
{
  wb_u8(w, p ? 1 : 0);
  if (p) wb_bytes(w, p, n);
}

/* CKA_ALLOWED_MECHANISMS carries CKF_ARRAY_ATTRIBUTE although its value is a
 * CK_MECHANISM_TYPE array, not a CK_ATTRIBUTE array, so it travels as bytes. */
int is_attr_array(CK_ATTRIBUTE_TYPE t)
{
  return (t & CKF_ARRAY_ATTRIBUTE) && t != CKA_ALLOWED_MECHANISMS;
}

static CK_RV put_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n, int depth)
{
  if (n && !t) return CKR_ARGUMENTS_BAD;
  if (n > UINT32_MAX) return CKR_ARGUMENTS_BAD;
  wb_u32(w, (uint32_t)n);
  for (CK_ULONG i = 0; i < n; i++) {
    const CK_ATTRIBUTE *a = &t[i];
    if (!a->pValue && a->ulValueLen) return CKR_ATTRIBUTE_VALUE_INVALID;
    wb_ulong(w, a->type);
    if (is_attr_array(a->type)) {
      if (depth >= MAX_NESTING || a->ulValueLen % sizeof(CK_ATTRIBUTE)) return CKR_ATTRIBUTE_VALUE_INVALID;
      CK_RV rv = put_template(w, a->pValue, a->ulValueLen / sizeof(CK_ATTRIBUTE), depth + 1);
      if (rv != CKR_OK) return rv;
    } else {
      if (a->ulValueLen > UINT32_MAX) return CKR_ATTRIBUTE_VALUE_INVALID;
      wb_bytes(w, a->pValue, a->ulValueLen);
    }
  }
  return CKR_OK;
}

CK_RV wb_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n) { return put_template(w, t, n, 0); }

/* ---- reader --------------------------------------------------------------- */

void rb_init(rbuf *r, const uint8_t *p, size_t n)
{
  r->p = p;
  r->len = n;
  r->off = 0;
  r->bad = 0;
}

static const uint8_t *rb_take(rbuf *r, size_t n)
{
  if (r->bad || n > r->len - r->off) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *p = r->p + r->off;
  r->off += n;
  return p;
}

uint8_t rb_u8(rbuf *r)
{
  const uint8_t *p = rb_take(r, 1);
  return p ? p[0] : 0;
}

uint16_t rb_u16(rbuf *r)
{
  const uint8_t *p = rb_take(r, 2);
  return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t rb_u32(rbuf *r)
{
  const uint8_t *p = rb_take(r, 4);
  return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t rb_u64(rbuf *r)
{
  uint64_t hi = rb_u32(r);
  return hi << 32 | rb_u32(r);
}

CK_ULONG rb_ulong(rbuf *r)
{
  uint64_t v = rb_u64(r);
  if (v > ULONG_MAX && v != UINT64_MAX) r->bad = 1; /* all-ones is CK_UNAVAILABLE_INFORMATION */
  return (CK_ULONG)v;
}

const uint8_t *rb_bytes(rbuf *r, size_t *n)
{
  uint32_t len = rb_u32(r);
  const uint8_t *p = rb_take(r, len);
  *n = p ? len : 0;
  return p;
}

void rb_padded(rbuf *r, void *dst, size_t n)
{
  const uint8_t *p = rb_take(r, n);
  if (p) memcpy(dst, p, n);
  else memset(dst, ' ', n);
}

void rb_version(rbuf *r, CK_VERSION *v)
{
  v->major = rb_u8(r);
  v->minor = rb_u8(r);
}

int rb_at_end(const rbuf *r) { return !r->bad && r->off == r->len; }

/* ---- C_GetAttributeValue outputs (PKCS#11 2.40 §5.7) ---------------------- */

/* One value into the application's attribute: NULL pValue asks for the length,
 * a short buffer gets CK_UNAVAILABLE_INFORMATION and CKR_BUFFER_TOO_SMALL. */
static CK_RV give_value(CK_ATTRIBUTE *a, const uint8_t *v, size_t n)
{
  if (!a->pValue) {
    a->ulValueLen = n;
    return CKR_OK;
  }
  if (a->ulValueLen < n) {
    a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
    return CKR_BUFFER_TOO_SMALL;
  }
  if (n) memcpy(a->pValue, v, n);
  a->ulValueLen = n;
  return CKR_OK;
}

/* A nested `template` (array attribute value) into the application's
 * CK_ATTRIBUTE array at a->pValue. A NULL or short array still has to be
 * parsed through, so elements then land in a scratch attribute. */
static CK_RV give_nested(rbuf *r, CK_ATTRIBUTE *a, int depth)
{
  uint32_t m = rb_u32(r);
  if (r->bad || depth >= MAX_NESTING || m > (r->len - r->off) / 12) { /* 12: smallest encoded attribute */
    r->bad = 1;
    return CKR_OK;
  }
  CK_ULONG need = (CK_ULONG)m * sizeof(CK_ATTRIBUTE);
  CK_ATTRIBUTE *arr = (a->pValue && a->ulValueLen >= need) ? a->pValue : NULL;
  CK_RV rv = CKR_OK;
  for (uint32_t j = 0; j < m && !r->bad; j++) {
    CK_ATTRIBUTE scratch = {0, NULL, 0};
    CK_ATTRIBUTE *e = arr ? &arr[j] : &scratch;
    e->type = rb_ulong(r);
    CK_RV one;
    if (is_attr_array(e->type)) {
      one = give_nested(r, e, depth + 1);
    } else {
      size_t n;
      const uint8_t *v = rb_bytes(r, &n);
      one = r->bad ? CKR_OK : give_value(e, v, n);
    }
    if (one != CKR_OK) rv = one;
  }
  if (!a->pValue) {
    a->ulValueLen = need;
  } else if (!arr) {
    a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
    rv = CKR_BUFFER_TOO_SMALL;
  } else {
    a->ulValueLen = need;
  }
  return rv;
}

CK_RV rb_attr_values_into(rbuf *r, CK_ATTRIBUTE *t, CK_ULONG n)
{
  if (rb_u32(r) != n) r->bad = 1;
  CK_RV rv = CKR_OK;
  for (CK_ULONG i = 0; i < n && !r->bad; i++) {
    if (rb_ulong(r) != t[i].type) r->bad = 1;
    uint64_t len = rb_u64(r);
    if (r->bad) break;
    if (len == UINT64_MAX) { /* sensitive or unknown: the daemon's rv says which */
      t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      continue;
    }
    const uint8_t *v = rb_take(r, len > SIZE_MAX ? SIZE_MAX : (size_t)len);
    if (!v) break;
    CK_RV one;
    if (is_attr_array(t[i].type)) {
      rbuf sub;
      rb_init(&sub, v, (size_t)len);
      one = give_nested(&sub, &t[i], 0);
      if (!rb_at_end(&sub)) r->bad = 1;
    } else {
      one = give_value(&t[i], v, (size_t)len);
    }
    if (one != CKR_OK) rv = one;
  }
  return rv;
}
