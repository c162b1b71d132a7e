/*
 * Declarations shared by the proxy module's source files. Nothing here is
 * exported from libcraton_hsm.so: only the C_* entry points are (see
 * exports.map and CK_EXPORT).
 */
#ifndef CRATON_INTERNAL_H
#define CRATON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "craton_pkcs11.h"

#define CK_EXPORT __attribute__((visibility("default")))

/* Call ids: 1-based position in the 2.40 CK_FUNCTION_LIST (protocol.md "Calls"). */
#define CALL_ID(fn) ((uint16_t)((offsetof(CK_FUNCTION_LIST, fn) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *) + 1))
#define CALL_HELLO 0

#define PROTOCOL_VERSION 2u /* offered first; 1 when an older daemon refuses 2 */
#define DEFAULT_MAX_FRAME (16u * 1024u * 1024u + 64u)
#define REQ_HEADER_LEN 12u /* length, request_id, call_id, flags */
#define REP_HEADER_LEN 20u /* ... plus rv */
#define APP_TOKEN_LEN 16u

/* ---- debug.c-like helper (module.c) ------------------------------------ */
void dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void dbg_init(void);

/* ---- wire.c: bounds-checked codec ---------------------------------------- */
typedef struct {
  uint8_t *p;
  size_t len, cap;
  int oom; /* a failed allocation; reported as CKR_HOST_MEMORY when sent */
} wbuf;

void wb_init(wbuf *w);
void wb_free(wbuf *w); /* zeroes first: requests carry PINs and key material */
void wb_raw(wbuf *w, const void *p, size_t n);
void wb_u8(wbuf *w, uint8_t v);
void wb_u16(wbuf *w, uint16_t v);
void wb_u32(wbuf *w, uint32_t v);
void wb_u64(wbuf *w, uint64_t v);
void wb_ulong(wbuf *w, CK_ULONG v);
void wb_bytes(wbuf *w, const void *p, size_t n);
void wb_opt_bytes(wbuf *w, const void *p, size_t n);
CK_RV wb_template(wbuf *w, const CK_ATTRIBUTE *t, CK_ULONG n);

typedef struct {
  const uint8_t *p;
  size_t len, off;
  int bad; /* any short read or out-of-range value makes the reply malformed */
} rbuf;

void rb_init(rbuf *r, const uint8_t *p, size_t n);
uint8_t rb_u8(rbuf *r);
uint16_t rb_u16(rbuf *r);
uint32_t rb_u32(rbuf *r);
uint64_t rb_u64(rbuf *r);
CK_ULONG rb_ulong(rbuf *r);
const uint8_t *rb_bytes(rbuf *r, size_t *n);
void rb_padded(rbuf *r, void *dst, size_t n);
void rb_version(rbuf *r, CK_VERSION *v);
int rb_at_end(const rbuf *r);

int is_attr_array(CK_ATTRIBUTE_TYPE t);
/* Applies the per-attribute rules of C_GetAttributeValue to one decoded attr_values list. */
CK_RV rb_attr_values_into(rbuf *r, CK_ATTRIBUTE *t, CK_ULONG n);

/* ---- mech_params.c ------------------------------------------------------- */
CK_RV wb_mechanism(wbuf *w, const CK_MECHANISM *m);
/* Copies a token-generated IV into the caller's CK_GCM_PARAMS.pIv; 0 when m is not
 * CKM_AES_GCM with an IV buffer of exactly n bytes (the reply is then malformed). */
int mech_write_back_iv(const CK_MECHANISM *m, const uint8_t *iv, size_t n);

/* ---- module.c: locks that honour the application's mutex callbacks ------- */
typedef struct {
  void *m;
} mlock;
CK_RV mlock_new(mlock *l);
void mlock_free(mlock *l);
void mlock_take(mlock *l);
void mlock_give(mlock *l);
/* CKR_OK when the module is initialized in this process. */
CK_RV module_ready(void);

/* ---- stash.c: session table (daemon epoch per handle) and output stash --- */
CK_RV sessions_start(void);
void sessions_stop(void);
void sessions_forget(void);
void sessions_lock_for_fork(int take);
CK_RV session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot, uint64_t epoch);
void session_remove(CK_SESSION_HANDLE h);
void session_remove_slot(CK_SLOT_ID slot);
/* CKR_SESSION_HANDLE_INVALID when h was opened under an earlier daemon epoch. */
CK_RV session_check(CK_SESSION_HANDLE h, uint64_t epoch);
/* Drops the session's stash unless it holds the output of call_id. */
void stash_keep_only(CK_SESSION_HANDLE h, uint16_t call_id);
/* 1 when a stashed output answered the call (rv set), 0 otherwise; req is the
 * request payload, which must equal the one that produced the stash. */
int stash_answer(CK_SESSION_HANDLE h, uint16_t call_id, const uint8_t *req, size_t req_len, CK_BYTE_PTR out,
                 CK_ULONG_PTR out_len, CK_RV *rv);
/* Delivers a fresh output per PKCS#11 §5.2, stashing it when the caller must retry. */
CK_RV stash_deliver(CK_SESSION_HANDLE h, uint16_t call_id, const uint8_t *req, size_t req_len,
                    const uint8_t *data, size_t n, CK_BYTE_PTR out, CK_ULONG_PTR out_len);

/* ---- conn.c: pool, HELLO, restart detection, the round trip -------------- */
CK_RV pool_start(void);
void pool_stop(void);   /* ends the application at the daemon, closes everything */
void pool_forget(void); /* forked child: close inherited fds without a word to the daemon */
void pool_lock_for_fork(int take);

typedef struct conn conn;
typedef struct {
  uint16_t id;
  int has_session;
  CK_SESSION_HANDLE h;
  wbuf req;       /* payload being written by the stub */
  conn *c;        /* held from call_run until call_end */
  uint8_t *reply; /* the whole reply frame */
  size_t reply_len;
  rbuf out;       /* reply payload */
  uint64_t epoch; /* daemon epoch of the connection that carried the call */
} call;

/* Initialized check, then an empty request. */
CK_RV call_begin(call *k, uint16_t id);
/* Same, for a call on session h; also enforces "any other call discards the stash". */
CK_RV call_begin_session(call *k, uint16_t id, CK_SESSION_HANDLE h);
/* Sends the request, reads the reply; returns the daemon's rv or a transport error. */
CK_RV call_run(call *k);
/* Frees the call; a reply that did not decode exactly turns rv into CKR_DEVICE_ERROR. */
CK_RV call_end(call *k, CK_RV rv);

#endif
