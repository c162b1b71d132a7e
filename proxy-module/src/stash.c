/*
 * The session table: for each session handle, the daemon epoch it was opened
 * under (so handles from before a daemon restart are refused locally) and the
 * session's stash.
 *
 * The stash implements PKCS#11 2.40 §5.2 for byte outputs. The daemon always
 * computes the whole output; when the caller's buffer is NULL or too short the
 * output is kept here, the length answered, and the caller's retry served from
 * memory. A length query therefore never signs twice or consumes a nonce, and
 * CKR_BUFFER_TOO_SMALL leaves the operation "active" as the spec demands.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BUCKETS 256

typedef struct sess {
  struct sess *next;
  CK_SESSION_HANDLE h;
  CK_SLOT_ID slot;
  uint64_t epoch; /* 0: unknown origin, never judged stale */
  uint16_t stash_call;
  uint8_t *stash; /* the output, then the request payload that produced it */
  size_t stash_len, stash_req_len;
} sess;

static sess *table[BUCKETS];
static mlock lock;

static sess **slot_of(CK_SESSION_HANDLE h)
{
  sess **pp = &table[(h ^ (h >> 8)) % BUCKETS];
  while (*pp && (*pp)->h != h) pp = &(*pp)->next;
  return pp;
}

static void stash_clear(sess *s)
{
  if (s->stash) {
    explicit_bzero(s->stash, s->stash_len + s->stash_req_len);
    free(s->stash);
  }
  s->stash = NULL;
  s->stash_len = s->stash_req_len = 0;
  s->stash_call = 0;
}

static void free_all(void)
{
  for (size_t i = 0; i < BUCKETS; i++) {
    while (table[i]) {
      sess *s = table[i];
      table[i] = s->next;
      stash_clear(s);
      free(s);
    }
  }
}

CK_RV sessions_start(void)
{
  memset(table, 0, sizeof table);
  return mlock_new(&lock);
}

void sessions_stop(void)
{
  free_all();
  mlock_free(&lock);
}

/* Forked child: the lock was made consistent by the atfork handler; the memory
 * is ours to free. */
void sessions_forget(void) { sessions_stop(); }

CK_RV session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot, uint64_t epoch)
{
  mlock_take(&lock);
  sess **pp = slot_of(h);
  sess *s = *pp;
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) {
      mlock_give(&lock);
      return CKR_HOST_MEMORY;
    }
    s->h = h;
    *pp = s;
  }
  stash_clear(s); /* a reused handle number starts clean */
  s->slot = slot;
  s->epoch = epoch;
  mlock_give(&lock);
  return CKR_OK;
}

void session_remove(CK_SESSION_HANDLE h)
{
  mlock_take(&lock);
  sess **pp = slot_of(h);
  sess *s = *pp;
  if (s) {
    *pp = s->next;
    stash_clear(s);
    free(s);
  }
  mlock_give(&lock);
}

void session_remove_slot(CK_SLOT_ID slot)
{
  mlock_take(&lock);
  for (size_t i = 0; i < BUCKETS; i++) {
    sess **pp = &table[i];
    while (*pp) {
      sess *s = *pp;
      if (s->slot == slot && s->epoch) {
        *pp = s->next;
        stash_clear(s);
        free(s);
      } else {
        pp = &s->next;
      }
    }
  }
  mlock_give(&lock);
}

CK_RV session_check(CK_SESSION_HANDLE h, uint64_t epoch)
{
  mlock_take(&lock);
  sess *s = *slot_of(h);
  CK_RV rv = (s && s->epoch && s->epoch != epoch) ? CKR_SESSION_HANDLE_INVALID : CKR_OK;
  mlock_give(&lock);
  return rv;
}

void stash_keep_only(CK_SESSION_HANDLE h, uint16_t call_id)
{
  mlock_take(&lock);
  sess *s = *slot_of(h);
  if (s && s->stash_call && s->stash_call != call_id) stash_clear(s);
  mlock_give(&lock);
}

/* Length answer or copy, the same rule for fresh and stashed output.
 * Returns 1 when the caller got the bytes (the stash can go). */
static int hand_over(const uint8_t *data, size_t n, CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_RV *rv)
{
  if (!out) {
    *out_len = n;
    *rv = CKR_OK;
    return 0;
  }
  if (*out_len < n) {
    *out_len = n;
    *rv = CKR_BUFFER_TOO_SMALL;
    return 0;
  }
  if (n) memcpy(out, data, n);
  *out_len = n;
  *rv = CKR_OK;
  return 1;
}

/* A retry is the same call with the same inputs. Comparing the request
 * payload also protects callers that skip the retry after a zero-length
 * answer: their next, different, call goes to the daemon. */
int stash_answer(CK_SESSION_HANDLE h, uint16_t call_id, const uint8_t *req, size_t req_len, CK_BYTE_PTR out,
                 CK_ULONG_PTR out_len, CK_RV *rv)
{
  mlock_take(&lock);
  sess *s = *slot_of(h);
  int answered = 0;
  if (s && s->stash_call) {
    if (s->stash_call == call_id && s->stash_req_len == req_len &&
        memcmp(s->stash + s->stash_len, req, req_len) == 0) {
      answered = 1;
      if (hand_over(s->stash, s->stash_len, out, out_len, rv)) stash_clear(s);
    } else {
      stash_clear(s);
    }
  }
  mlock_give(&lock);
  return answered;
}

CK_RV stash_deliver(CK_SESSION_HANDLE h, uint16_t call_id, const uint8_t *req, size_t req_len,
                    const uint8_t *data, size_t n, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
  CK_RV rv;
  if (hand_over(data, n, out, out_len, &rv)) return rv;

  /* The caller will retry: keep copies (both buffers belong to the call). */
  if (req_len > SIZE_MAX - n - 1) return CKR_HOST_MEMORY;
  uint8_t *copy = malloc(n + req_len + 1);
  if (!copy) return CKR_HOST_MEMORY;
  if (n) memcpy(copy, data, n);
  if (req_len) memcpy(copy + n, req, req_len);
  mlock_take(&lock);
  sess **pp = slot_of(h);
  if (!*pp) *pp = calloc(1, sizeof **pp); /* a handle we did not see opened: epoch 0 */
  if (!*pp) {
    mlock_give(&lock);
    explicit_bzero(copy, n + req_len);
    free(copy);
    return CKR_HOST_MEMORY;
  }
  sess *s = *pp;
  s->h = h;
  stash_clear(s);
  s->stash = copy;
  s->stash_len = n;
  s->stash_req_len = req_len;
  s->stash_call = call_id;
  mlock_give(&lock);
  return rv;
}

void sessions_lock_for_fork(int take)
{
  if (take) mlock_take(&lock);
  else mlock_give(&lock);
}
