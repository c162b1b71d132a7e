/*
 * The PKCS#11 entry points that go to the daemon. Every stub has the same
 * shape: begin the call (initialized? session?) → check arguments → write the
 * inputs → call_run → read the outputs → call_end. The helpers below carry
 * the shapes shared by many calls, so each stub is a few lines; the payload
 * of each call is the table in docs/protocol.md "Calls".
 *
 * Outputs are decoded into locals and copied to the caller only once the
 * reply decoded exactly, so a malformed reply never half-fills a structure.
 */
#include <string.h>

#include "internal.h"

#define ID(fn) CALL_ID(fn)

/* Argument errors found after call_begin still go through call_end, which
 * frees the request. */
#define BAD_ARGS(k) call_end((k), CKR_ARGUMENTS_BAD)

static CK_RV run_and_end(call *k) { return call_end(k, call_run(k)); }

/* Sets *rv too, so a stub can `return call_end(&k, rv)` on failure. */
static CK_RV put_template(call *k, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_RV *rv)
{
  if (!t && n) return *rv = CKR_ARGUMENTS_BAD;
  return *rv = wb_template(&k->req, t, n);
}

/* A reply that is one `ulong` handle/size (only read when rv is CKR_OK). */
static CK_RV run_ulong_out(call *k, CK_ULONG_PTR out)
{
  CK_RV rv = call_run(k);
  if (rv == CKR_OK) {
    CK_ULONG v = rb_ulong(&k->out);
    if (rb_at_end(&k->out)) *out = v;
  }
  return call_end(k, rv);
}

/* An `ulong_list` reply under the two-call length convention. */
static CK_RV list_out(call *k, CK_RV rv, CK_ULONG_PTR list, CK_ULONG_PTR count)
{
  if (rv != CKR_OK) return rv;
  rbuf *r = &k->out;
  uint32_t n = rb_u32(r);
  if (r->bad || r->len - r->off != (size_t)n * 8) {
    r->bad = 1;
    return rv;
  }
  if (!list) {
    r->off = r->len;
    *count = n;
    return CKR_OK;
  }
  if (*count < n) {
    r->off = r->len;
    *count = n;
    return CKR_BUFFER_TOO_SMALL;
  }
  for (uint32_t i = 0; i < n; i++) list[i] = rb_ulong(r);
  if (!r->bad) *count = n;
  return rv;
}

/* ---- byte outputs: PKCS#11 §5.2 through the stash ------------------------- */

/* Everything after the inputs were written, for calls with one byte-string
 * output: a retry with the same inputs is served from the stash. */
static CK_RV finish_bytes_out(call *k, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
  const uint8_t *req = k->req.p + REQ_HEADER_LEN;
  size_t req_len = k->req.len - REQ_HEADER_LEN;
  CK_RV rv;
  if (k->req.oom) return call_end(k, CKR_HOST_MEMORY);
  if (stash_answer(k->h, k->id, req, req_len, out, out_len, &rv)) return call_end(k, rv);
  rv = call_run(k);
  if (rv == CKR_OK) {
    size_t n;
    const uint8_t *p = rb_bytes(&k->out, &n);
    if (rb_at_end(&k->out)) rv = stash_deliver(k->h, k->id, req, req_len, p, n, out, out_len);
  }
  return call_end(k, rv);
}

/* h, `bytes` in → `bytes` out: the single-part and update calls. */
static CK_RV data_to_bytes(uint16_t id, CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  if (!out_len || (!in && in_len)) return BAD_ARGS(&k);
  wb_bytes(&k.req, in, in_len);
  return finish_bytes_out(&k, out, out_len);
}

/* h → `bytes` out: the final calls and C_GetOperationState. */
static CK_RV none_to_bytes(uint16_t id, CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  if (!out_len) return BAD_ARGS(&k);
  return finish_bytes_out(&k, out, out_len);
}

/* ---- other shared shapes ------------------------------------------------------ */

/* h → empty */
static CK_RV session_only(uint16_t id, CK_SESSION_HANDLE h)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  return run_and_end(&k);
}

/* h, `bytes` → empty */
static CK_RV data_in(uint16_t id, CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  if (!in && in_len) return BAD_ARGS(&k);
  wb_bytes(&k.req, in, in_len);
  return run_and_end(&k);
}

/* h, `ulong` → empty */
static CK_RV handle_in(uint16_t id, CK_SESSION_HANDLE h, CK_ULONG v)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  wb_ulong(&k.req, v);
  return run_and_end(&k);
}

/* h, `mechanism`, `ulong` key → empty: the *Init calls. Protocol 2: a C_EncryptInit
 * reply may carry the IV the token generated (`bytes`), which goes to the caller's
 * CK_GCM_PARAMS.pIv (PKCS#11 3.0 token-generated IV). */
static CK_RV mech_init(uint16_t id, CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, const CK_OBJECT_HANDLE *key)
{
  call k;
  CK_RV rv = call_begin_session(&k, id, h);
  if (rv != CKR_OK) return rv;
  if (!m) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, m)) != CKR_OK) return call_end(&k, rv);
  if (key) wb_ulong(&k.req, *key);
  rv = call_run(&k);
  if (rv == CKR_OK && id == ID(C_EncryptInit) && k.out.off < k.out.len) {
    size_t n;
    const uint8_t *iv = rb_bytes(&k.out, &n);
    if (!k.out.bad && rb_at_end(&k.out) && !mech_write_back_iv(m, iv, n)) k.out.bad = 1;
  }
  return call_end(&k, rv);
}

/* ---- general purpose, slots and tokens ------------------------------------------ */

CK_EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_GetSlotList));
  if (rv != CKR_OK) return rv;
  if (!pulCount) return BAD_ARGS(&k);
  wb_u8(&k.req, tokenPresent ? 1 : 0);
  rv = call_run(&k);
  return call_end(&k, list_out(&k, rv, pSlotList, pulCount));
}

CK_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_GetSlotInfo));
  if (rv != CKR_OK) return rv;
  if (!pInfo) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_SLOT_INFO i;
    rb_padded(&k.out, i.slotDescription, sizeof i.slotDescription);
    rb_padded(&k.out, i.manufacturerID, sizeof i.manufacturerID);
    i.flags = rb_ulong(&k.out);
    rb_version(&k.out, &i.hardwareVersion);
    rb_version(&k.out, &i.firmwareVersion);
    if (rb_at_end(&k.out)) *pInfo = i;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_GetTokenInfo));
  if (rv != CKR_OK) return rv;
  if (!pInfo) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_TOKEN_INFO i;
    rbuf *r = &k.out;
    rb_padded(r, i.label, sizeof i.label);
    rb_padded(r, i.manufacturerID, sizeof i.manufacturerID);
    rb_padded(r, i.model, sizeof i.model);
    rb_padded(r, i.serialNumber, sizeof i.serialNumber);
    i.flags = rb_ulong(r);
    i.ulMaxSessionCount = rb_ulong(r);
    i.ulSessionCount = rb_ulong(r);
    i.ulMaxRwSessionCount = rb_ulong(r);
    i.ulRwSessionCount = rb_ulong(r);
    i.ulMaxPinLen = rb_ulong(r);
    i.ulMinPinLen = rb_ulong(r);
    i.ulTotalPublicMemory = rb_ulong(r);
    i.ulFreePublicMemory = rb_ulong(r);
    i.ulTotalPrivateMemory = rb_ulong(r);
    i.ulFreePrivateMemory = rb_ulong(r);
    rb_version(r, &i.hardwareVersion);
    rb_version(r, &i.firmwareVersion);
    rb_padded(r, i.utcTime, sizeof i.utcTime);
    if (rb_at_end(r)) *pInfo = i;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_GetMechanismList));
  if (rv != CKR_OK) return rv;
  if (!pulCount) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  rv = call_run(&k);
  return call_end(&k, list_out(&k, rv, pMechanismList, pulCount));
}

CK_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_GetMechanismInfo));
  if (rv != CKR_OK) return rv;
  if (!pInfo) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  wb_ulong(&k.req, type);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_MECHANISM_INFO i;
    i.ulMinKeySize = rb_ulong(&k.out);
    i.ulMaxKeySize = rb_ulong(&k.out);
    i.flags = rb_ulong(&k.out);
    if (rb_at_end(&k.out)) *pInfo = i;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_InitToken));
  if (rv != CKR_OK) return rv;
  if (!pLabel) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  wb_opt_bytes(&k.req, pPin, ulPinLen);
  wb_raw(&k.req, pLabel, 32);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_InitPIN), hSession);
  if (rv != CKR_OK) return rv;
  wb_opt_bytes(&k.req, pPin, ulPinLen);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                         CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_SetPIN), hSession);
  if (rv != CKR_OK) return rv;
  wb_opt_bytes(&k.req, pOldPin, ulOldLen);
  wb_opt_bytes(&k.req, pNewPin, ulNewLen);
  return run_and_end(&k);
}

/* ---- sessions ------------------------------------------------------------------------- */

/* Notification callbacks are accepted and never called: the daemon sends no
 * notifications (PKCS#11 allows a library never to surrender). */
CK_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                              CK_SESSION_HANDLE_PTR phSession)
{
  (void)pApplication;
  (void)Notify;
  call k;
  CK_RV rv = call_begin(&k, ID(C_OpenSession));
  if (rv != CKR_OK) return rv;
  if (!phSession) return BAD_ARGS(&k);
  wb_ulong(&k.req, slotID);
  wb_ulong(&k.req, flags);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_SESSION_HANDLE h = rb_ulong(&k.out);
    if (rb_at_end(&k.out)) {
      rv = session_add(h, slotID, k.epoch);
      if (rv == CKR_OK) *phSession = h;
      /* On CKR_HOST_MEMORY the daemon's session stays open until C_Finalize. */
    }
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
  CK_RV rv = session_only(ID(C_CloseSession), hSession);
  if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) session_remove(hSession);
  return rv;
}

CK_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
  call k;
  CK_RV rv = call_begin(&k, ID(C_CloseAllSessions));
  if (rv != CKR_OK) return rv;
  wb_ulong(&k.req, slotID);
  rv = run_and_end(&k);
  if (rv == CKR_OK) session_remove_slot(slotID);
  return rv;
}

CK_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GetSessionInfo), hSession);
  if (rv != CKR_OK) return rv;
  if (!pInfo) return BAD_ARGS(&k);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_SESSION_INFO i;
    i.slotID = rb_ulong(&k.out);
    i.state = rb_ulong(&k.out);
    i.flags = rb_ulong(&k.out);
    i.ulDeviceError = rb_ulong(&k.out);
    if (rb_at_end(&k.out)) *pInfo = i;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                    CK_ULONG_PTR pulOperationStateLen)
{
  return none_to_bytes(ID(C_GetOperationState), hSession, pOperationState, pulOperationStateLen);
}

CK_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                    CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                    CK_OBJECT_HANDLE hAuthenticationKey)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_SetOperationState), hSession);
  if (rv != CKR_OK) return rv;
  if (!pOperationState) return BAD_ARGS(&k);
  wb_bytes(&k.req, pOperationState, ulOperationStateLen);
  wb_ulong(&k.req, hEncryptionKey);
  wb_ulong(&k.req, hAuthenticationKey);
  return run_and_end(&k);
}

/* A NULL PIN means a protected authentication path; the daemon decides. */
CK_EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_Login), hSession);
  if (rv != CKR_OK) return rv;
  wb_ulong(&k.req, userType);
  wb_opt_bytes(&k.req, pPin, ulPinLen);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession) { return session_only(ID(C_Logout), hSession); }

/* ---- objects ----------------------------------------------------------------------------- */

CK_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                               CK_OBJECT_HANDLE_PTR phObject)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_CreateObject), hSession);
  if (rv != CKR_OK) return rv;
  if (!phObject) return BAD_ARGS(&k);
  if (put_template(&k, pTemplate, ulCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_ulong_out(&k, phObject);
}

CK_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                             CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_CopyObject), hSession);
  if (rv != CKR_OK) return rv;
  if (!phNewObject) return BAD_ARGS(&k);
  wb_ulong(&k.req, hObject);
  if (put_template(&k, pTemplate, ulCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_ulong_out(&k, phNewObject);
}

CK_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
  return handle_in(ID(C_DestroyObject), hSession, hObject);
}

CK_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GetObjectSize), hSession);
  if (rv != CKR_OK) return rv;
  if (!pulSize) return BAD_ARGS(&k);
  wb_ulong(&k.req, hObject);
  return run_ulong_out(&k, pulSize);
}

/* The daemon answers every requested value; the per-attribute length rules of
 * §5.7 are applied here (wire.c), and the daemon's SENSITIVE / TYPE_INVALID
 * verdict outranks a local BUFFER_TOO_SMALL. */
CK_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GetAttributeValue), hSession);
  if (rv != CKR_OK) return rv;
  if ((!pTemplate && ulCount) || ulCount > UINT32_MAX) return BAD_ARGS(&k);
  wb_ulong(&k.req, hObject);
  wb_u32(&k.req, (uint32_t)ulCount);
  for (CK_ULONG i = 0; i < ulCount; i++) wb_ulong(&k.req, pTemplate[i].type);
  rv = call_run(&k);
  if (rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
    CK_RV local = rb_attr_values_into(&k.out, pTemplate, ulCount);
    if (rv == CKR_OK) rv = local;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_SetAttributeValue), hSession);
  if (rv != CKR_OK) return rv;
  wb_ulong(&k.req, hObject);
  if (put_template(&k, pTemplate, ulCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_FindObjectsInit), hSession);
  if (rv != CKR_OK) return rv;
  if (put_template(&k, pTemplate, ulCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
                              CK_ULONG_PTR pulObjectCount)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_FindObjects), hSession);
  if (rv != CKR_OK) return rv;
  if (!pulObjectCount || (!phObject && ulMaxObjectCount)) return BAD_ARGS(&k);
  wb_ulong(&k.req, ulMaxObjectCount);
  if ((rv = call_run(&k)) == CKR_OK) {
    rbuf *r = &k.out;
    uint32_t n = rb_u32(r);
    /* More handles than asked for is a protocol error, not a short buffer. */
    if (r->bad || n > ulMaxObjectCount || r->len - r->off != (size_t)n * 8) {
      r->bad = 1;
    } else {
      for (uint32_t i = 0; i < n; i++) phObject[i] = rb_ulong(r);
      *pulObjectCount = n;
    }
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
  return session_only(ID(C_FindObjectsFinal), hSession);
}

/* ---- encryption, decryption, digests, signatures ------------------------------------------ */

CK_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_EncryptInit), hSession, pMechanism, &hKey);
}

CK_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                          CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
  return data_to_bytes(ID(C_Encrypt), hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

CK_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
  return data_to_bytes(ID(C_EncryptUpdate), hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                               CK_ULONG_PTR pulLastEncryptedPartLen)
{
  return none_to_bytes(ID(C_EncryptFinal), hSession, pLastEncryptedPart, pulLastEncryptedPartLen);
}

CK_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_DecryptInit), hSession, pMechanism, &hKey);
}

CK_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                          CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
  return data_to_bytes(ID(C_Decrypt), hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
}

CK_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                                CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
  return data_to_bytes(ID(C_DecryptUpdate), hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

CK_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
  return none_to_bytes(ID(C_DecryptFinal), hSession, pLastPart, pulLastPartLen);
}

CK_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
  return mech_init(ID(C_DigestInit), hSession, pMechanism, NULL);
}

CK_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                         CK_ULONG_PTR pulDigestLen)
{
  return data_to_bytes(ID(C_Digest), hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

CK_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
  return data_in(ID(C_DigestUpdate), hSession, pPart, ulPartLen);
}

CK_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
  return handle_in(ID(C_DigestKey), hSession, hKey);
}

CK_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
  return none_to_bytes(ID(C_DigestFinal), hSession, pDigest, pulDigestLen);
}

CK_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_SignInit), hSession, pMechanism, &hKey);
}

CK_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                       CK_ULONG_PTR pulSignatureLen)
{
  return data_to_bytes(ID(C_Sign), hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
  return data_in(ID(C_SignUpdate), hSession, pPart, ulPartLen);
}

CK_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
  return none_to_bytes(ID(C_SignFinal), hSession, pSignature, pulSignatureLen);
}

CK_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_SignRecoverInit), hSession, pMechanism, &hKey);
}

CK_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                              CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
  return data_to_bytes(ID(C_SignRecover), hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CK_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_VerifyInit), hSession, pMechanism, &hKey);
}

/* The verdict is the rv (CKR_OK or CKR_SIGNATURE_INVALID / _LEN_RANGE). */
CK_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                         CK_ULONG ulSignatureLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_Verify), hSession);
  if (rv != CKR_OK) return rv;
  if ((!pData && ulDataLen) || (!pSignature && ulSignatureLen)) return BAD_ARGS(&k);
  wb_bytes(&k.req, pData, ulDataLen);
  wb_bytes(&k.req, pSignature, ulSignatureLen);
  return run_and_end(&k);
}

CK_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
  return data_in(ID(C_VerifyUpdate), hSession, pPart, ulPartLen);
}

CK_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
  return data_in(ID(C_VerifyFinal), hSession, pSignature, ulSignatureLen);
}

CK_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
  return mech_init(ID(C_VerifyRecoverInit), hSession, pMechanism, &hKey);
}

CK_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                                CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
  return data_to_bytes(ID(C_VerifyRecover), hSession, pSignature, ulSignatureLen, pData, pulDataLen);
}

/* ---- dual-function updates ------------------------------------------------------------------ */

CK_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
  return data_to_bytes(ID(C_DigestEncryptUpdate), hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
  return data_to_bytes(ID(C_DecryptDigestUpdate), hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

CK_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                    CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
  return data_to_bytes(ID(C_SignEncryptUpdate), hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

CK_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
  return data_to_bytes(ID(C_DecryptVerifyUpdate), hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

/* ---- keys ------------------------------------------------------------------------------------- */

CK_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
                              CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GenerateKey), hSession);
  if (rv != CKR_OK) return rv;
  if (!pMechanism || !phKey) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, pMechanism)) != CKR_OK) return call_end(&k, rv);
  if (put_template(&k, pTemplate, ulCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_ulong_out(&k, phKey);
}

CK_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                  CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                  CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                  CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GenerateKeyPair), hSession);
  if (rv != CKR_OK) return rv;
  if (!pMechanism || !phPublicKey || !phPrivateKey) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, pMechanism)) != CKR_OK) return call_end(&k, rv);
  if (put_template(&k, pPublicKeyTemplate, ulPublicKeyAttributeCount, &rv) != CKR_OK ||
      put_template(&k, pPrivateKeyTemplate, ulPrivateKeyAttributeCount, &rv) != CKR_OK)
    return call_end(&k, rv);
  if ((rv = call_run(&k)) == CKR_OK) {
    CK_OBJECT_HANDLE pub = rb_ulong(&k.out), priv = rb_ulong(&k.out);
    if (rb_at_end(&k.out)) *phPublicKey = pub, *phPrivateKey = priv;
  }
  return call_end(&k, rv);
}

CK_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                          CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_WrapKey), hSession);
  if (rv != CKR_OK) return rv;
  if (!pMechanism || !pulWrappedKeyLen) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, pMechanism)) != CKR_OK) return call_end(&k, rv);
  wb_ulong(&k.req, hWrappingKey);
  wb_ulong(&k.req, hKey);
  return finish_bytes_out(&k, pWrappedKey, pulWrappedKeyLen);
}

CK_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                            CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_UnwrapKey), hSession);
  if (rv != CKR_OK) return rv;
  if (!pMechanism || !phKey || (!pWrappedKey && ulWrappedKeyLen)) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, pMechanism)) != CKR_OK) return call_end(&k, rv);
  wb_ulong(&k.req, hUnwrappingKey);
  wb_bytes(&k.req, pWrappedKey, ulWrappedKeyLen);
  if (put_template(&k, pTemplate, ulAttributeCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_ulong_out(&k, phKey);
}

CK_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                            CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_DeriveKey), hSession);
  if (rv != CKR_OK) return rv;
  if (!pMechanism || !phKey) return BAD_ARGS(&k);
  if ((rv = wb_mechanism(&k.req, pMechanism)) != CKR_OK) return call_end(&k, rv);
  wb_ulong(&k.req, hBaseKey);
  if (put_template(&k, pTemplate, ulAttributeCount, &rv) != CKR_OK) return call_end(&k, rv);
  return run_ulong_out(&k, phKey);
}

/* ---- random numbers ------------------------------------------------------------------------------ */

CK_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
  return data_in(ID(C_SeedRandom), hSession, pSeed, ulSeedLen);
}

/* Exact length: the caller's buffer is the request, so nothing to stash. */
CK_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen)
{
  call k;
  CK_RV rv = call_begin_session(&k, ID(C_GenerateRandom), hSession);
  if (rv != CKR_OK) return rv;
  if (!pRandomData && ulRandomLen) return BAD_ARGS(&k);
  wb_ulong(&k.req, ulRandomLen);
  if ((rv = call_run(&k)) == CKR_OK) {
    size_t n;
    const uint8_t *p = rb_bytes(&k.out, &n);
    if (n != ulRandomLen) k.out.bad = 1;
    else if (rb_at_end(&k.out) && n) memcpy(pRandomData, p, n);
  }
  return call_end(&k, rv);
}
