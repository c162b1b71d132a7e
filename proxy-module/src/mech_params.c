/*
 * Mechanism encoding (docs/protocol.md "mechanism" and "Mechanism parameters").
 *
 * Parameters that hold pointers cannot travel as the application laid them
 * out, so the structures listed in the protocol are marshalled field by field
 * (form 2). Everything else goes as raw bytes (form 1): the daemon reads flat
 * parameters in the client's native layout, and a mechanism this module has
 * never heard of still reaches the daemon instead of being dropped.
 */
#include <string.h>

#include "internal.h"

/* Layouts from PKCS#11 2.40 that Debian's p11-kit 0.24 header does not declare. */
typedef struct {
  CK_ULONG ulDataLen;
  CK_BYTE_PTR pNonce;
  CK_ULONG ulNonceLen;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulMACLen;
} ccm_params;

typedef struct {
  CK_ULONG saltSource;
  CK_VOID_PTR pSaltSourceData;
  CK_ULONG ulSaltSourceDataLen;
  CK_ULONG iterations;
  CK_ULONG prf;
  CK_VOID_PTR pPrfData;
  CK_ULONG ulPrfDataLen;
  CK_UTF8CHAR_PTR pPassword;
  CK_ULONG ulPasswordLen;
} pbkd2_params2;

/* The 2.40 errata header dropped ulIvBits; applications built against it
 * pass this shorter structure. */
typedef struct {
  CK_BYTE_PTR pIv;
  CK_ULONG ulIvLen;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulTagBits;
} gcm_params_errata;

/* A (pointer, length) pair inside a parameter: NULL with a length is invalid. */
static int put_buf(wbuf *w, const void *p, CK_ULONG n)
{
  if (!p && n) return 0;
  wb_bytes(w, p, n);
  return 1;
}

#define NEED_SIZE(type) \
  do { \
    if (m->ulParameterLen != sizeof(type)) return CKR_MECHANISM_PARAM_INVALID; \
  } while (0)

/* Form 2 body for the mechanisms that need it; 0 in *handled otherwise. */
static CK_RV marshal(wbuf *w, const CK_MECHANISM *m, int *handled)
{
  const void *pp = m->pParameter;
  int ok = 1;
  *handled = 1;
  switch (m->mechanism) {
  case CKM_AES_GCM:
    if (m->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
      const CK_GCM_PARAMS *p = pp;
      ok = put_buf(w, p->pIv, p->ulIvLen);
      wb_ulong(w, p->ulIvBits);
      ok = ok && put_buf(w, p->pAAD, p->ulAADLen);
      wb_ulong(w, p->ulTagBits);
    } else if (m->ulParameterLen == sizeof(gcm_params_errata)) {
      const gcm_params_errata *p = pp;
      ok = put_buf(w, p->pIv, p->ulIvLen);
      wb_ulong(w, p->ulIvLen * 8);
      ok = ok && put_buf(w, p->pAAD, p->ulAADLen);
      wb_ulong(w, p->ulTagBits);
    } else {
      return CKR_MECHANISM_PARAM_INVALID;
    }
    break;
  case CKM_AES_CCM: {
    NEED_SIZE(ccm_params);
    const ccm_params *p = pp;
    wb_ulong(w, p->ulDataLen);
    ok = put_buf(w, p->pNonce, p->ulNonceLen) && put_buf(w, p->pAAD, p->ulAADLen);
    wb_ulong(w, p->ulMACLen);
    break;
  }
  case CKM_RSA_PKCS_OAEP: {
    NEED_SIZE(CK_RSA_PKCS_OAEP_PARAMS);
    const CK_RSA_PKCS_OAEP_PARAMS *p = pp;
    wb_ulong(w, p->hashAlg);
    wb_ulong(w, p->mgf);
    wb_ulong(w, p->source);
    ok = put_buf(w, p->pSourceData, p->ulSourceDataLen);
    break;
  }
  case CKM_ECDH1_DERIVE:
  case CKM_ECDH1_COFACTOR_DERIVE: {
    NEED_SIZE(CK_ECDH1_DERIVE_PARAMS);
    const CK_ECDH1_DERIVE_PARAMS *p = pp;
    wb_ulong(w, p->kdf);
    ok = put_buf(w, p->pSharedData, p->ulSharedDataLen) && put_buf(w, p->pPublicData, p->ulPublicDataLen);
    break;
  }
  case CKM_HKDF_DERIVE:
  case CKM_HKDF_DATA: {
    NEED_SIZE(CK_HKDF_PARAMS);
    const CK_HKDF_PARAMS *p = pp;
    wb_u8(w, p->bExtract);
    wb_u8(w, p->bExpand);
    wb_ulong(w, p->prfHashMechanism);
    wb_ulong(w, p->ulSaltType);
    ok = put_buf(w, p->pSalt, p->ulSaltLen);
    wb_ulong(w, p->hSaltKey);
    ok = ok && put_buf(w, p->pInfo, p->ulInfoLen);
    break;
  }
  case CKM_EDDSA: {
    NEED_SIZE(CK_EDDSA_PARAMS);
    const CK_EDDSA_PARAMS *p = pp;
    wb_u8(w, p->phFlag);
    ok = put_buf(w, p->pContextData, p->ulContextDataLen);
    break;
  }
  case CKM_AES_CBC_ENCRYPT_DATA: {
    NEED_SIZE(CK_AES_CBC_ENCRYPT_DATA_PARAMS);
    const CK_AES_CBC_ENCRYPT_DATA_PARAMS *p = pp;
    wb_bytes(w, p->iv, sizeof p->iv);
    ok = put_buf(w, p->pData, p->length);
    break;
  }
  case CKM_AES_ECB_ENCRYPT_DATA: {
    NEED_SIZE(CK_KEY_DERIVATION_STRING_DATA);
    const CK_KEY_DERIVATION_STRING_DATA *p = pp;
    wb_bytes(w, NULL, 0);
    ok = put_buf(w, p->pData, p->ulLen);
    break;
  }
  case CKM_PKCS5_PBKD2: {
    NEED_SIZE(pbkd2_params2);
    const pbkd2_params2 *p = pp;
    wb_ulong(w, p->saltSource);
    ok = put_buf(w, p->pSaltSourceData, p->ulSaltSourceDataLen);
    wb_ulong(w, p->iterations);
    wb_ulong(w, p->prf);
    ok = ok && put_buf(w, p->pPrfData, p->ulPrfDataLen) && put_buf(w, p->pPassword, p->ulPasswordLen);
    break;
  }
  default:
    *handled = 0;
  }
  return ok ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

CK_RV wb_mechanism(wbuf *w, const CK_MECHANISM *m)
{
  if (!m) return CKR_ARGUMENTS_BAD;
  wb_ulong(w, m->mechanism);
  if (!m->pParameter) {
    if (m->ulParameterLen) return CKR_MECHANISM_PARAM_INVALID;
    wb_u8(w, 0);
    return CKR_OK;
  }
  if (m->ulParameterLen > UINT32_MAX) return CKR_MECHANISM_PARAM_INVALID;

  /* Marshal into a side buffer first: form 2 is `bytes`, length-prefixed. */
  wbuf body;
  wb_init(&body);
  int handled;
  CK_RV rv = marshal(&body, m, &handled);
  if (rv == CKR_OK) {
    if (handled) {
      wb_u8(w, 2);
      wb_bytes(w, body.p, body.len);
      if (body.oom) w->oom = 1;
    } else {
      wb_u8(w, 1);
      wb_bytes(w, m->pParameter, m->ulParameterLen);
    }
  }
  wb_free(&body); /* may hold a PBKDF2 password */
  return rv;
}

int mech_write_back_iv(const CK_MECHANISM *m, const uint8_t *iv, size_t n)
{
  if (!m || m->mechanism != CKM_AES_GCM || !m->pParameter) return 0;
  CK_BYTE_PTR dst;
  CK_ULONG len;
  if (m->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
    const CK_GCM_PARAMS *p = m->pParameter;
    dst = p->pIv;
    len = p->ulIvLen;
  } else if (m->ulParameterLen == sizeof(gcm_params_errata)) {
    const gcm_params_errata *p = m->pParameter;
    dst = p->pIv;
    len = p->ulIvLen;
  } else {
    return 0;
  }
  if (!dst || len != n) return 0;
  memcpy(dst, iv, n);
  return 1;
}
