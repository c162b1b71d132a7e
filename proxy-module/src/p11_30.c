/*
 * PKCS#11 3.0 additions other than the interface functions: not supported.
 * They exist so that the 3.0 function list has no NULL entries.
 */
#include "internal.h"
#include "p11_30.h"

static CK_RV not_supported(void)
{
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

#define UNUSED __attribute__((unused))
typedef CK_SESSION_HANDLE H;

CK_RV C_LoginUser(H h UNUSED, CK_USER_TYPE u UNUSED, CK_UTF8CHAR_PTR p UNUSED, CK_ULONG pl UNUSED,
                  CK_UTF8CHAR_PTR n UNUSED, CK_ULONG nl UNUSED)
{
  return not_supported();
}

CK_RV C_SessionCancel(H h UNUSED, CK_FLAGS f UNUSED) { return not_supported(); }

#define MSG_INIT(name) \
  CK_RV name(H h UNUSED, CK_MECHANISM_PTR m UNUSED, CK_OBJECT_HANDLE k UNUSED) { return not_supported(); }
#define MSG_FINAL(name) \
  CK_RV name(H h UNUSED) { return not_supported(); }
#define MSG_ONESHOT(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED, CK_BYTE_PTR a UNUSED, CK_ULONG al UNUSED, \
             CK_BYTE_PTR i UNUSED, CK_ULONG il UNUSED, CK_BYTE_PTR o UNUSED, CK_ULONG_PTR ol UNUSED) \
  { \
    return not_supported(); \
  }
#define MSG_BEGIN_AAD(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED, CK_BYTE_PTR a UNUSED, CK_ULONG al UNUSED) \
  { \
    return not_supported(); \
  }
#define MSG_NEXT_FLAGS(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED, CK_BYTE_PTR i UNUSED, CK_ULONG il UNUSED, \
             CK_BYTE_PTR o UNUSED, CK_ULONG_PTR ol UNUSED, CK_FLAGS f UNUSED) \
  { \
    return not_supported(); \
  }
#define MSG_BEGIN(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED) { return not_supported(); }
#define MSG_SIGN(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED, CK_BYTE_PTR d UNUSED, CK_ULONG dl UNUSED, \
             CK_BYTE_PTR s UNUSED, CK_ULONG_PTR sl UNUSED) \
  { \
    return not_supported(); \
  }
#define MSG_VERIFY(name) \
  CK_RV name(H h UNUSED, CK_VOID_PTR p UNUSED, CK_ULONG pl UNUSED, CK_BYTE_PTR d UNUSED, CK_ULONG dl UNUSED, \
             CK_BYTE_PTR s UNUSED, CK_ULONG sl UNUSED) \
  { \
    return not_supported(); \
  }

MSG_INIT(C_MessageEncryptInit)
MSG_ONESHOT(C_EncryptMessage)
MSG_BEGIN_AAD(C_EncryptMessageBegin)
MSG_NEXT_FLAGS(C_EncryptMessageNext)
MSG_FINAL(C_MessageEncryptFinal)
MSG_INIT(C_MessageDecryptInit)
MSG_ONESHOT(C_DecryptMessage)
MSG_BEGIN_AAD(C_DecryptMessageBegin)
MSG_NEXT_FLAGS(C_DecryptMessageNext)
MSG_FINAL(C_MessageDecryptFinal)
MSG_INIT(C_MessageSignInit)
MSG_SIGN(C_SignMessage)
MSG_BEGIN(C_SignMessageBegin)
MSG_SIGN(C_SignMessageNext)
MSG_FINAL(C_MessageSignFinal)
MSG_INIT(C_MessageVerifyInit)
MSG_VERIFY(C_VerifyMessage)
MSG_BEGIN(C_VerifyMessageBegin)
MSG_VERIFY(C_VerifyMessageNext)
MSG_FINAL(C_MessageVerifyFinal)
