/*
 * Token-generated AES-GCM IVs through the real module ([nonce] caller_iv = "generate"),
 * driven by test/integration/gcm-iv.test.ts. The application passes CK_GCM_PARAMS whose
 * pIv points to a 12-byte zero buffer; C_EncryptInit writes the IV the token used into it
 * (PKCS#11 3.0 token-generated IV). Every encryption is decrypted again with that IV.
 *
 * Usage: gcm_iv_client <module.so> <user-pin> <key-label> <count>   (count 0 = until an error)
 * Creates the AES-256 token key <key-label> when the token has none. Prints one line
 * "iv <24 hex digits>" per encryption (each is then decrypted and compared), then "done <n>" (count reached)
 * or "stop <n> rv=0x…" (the first failing call, e.g. the daemon was killed); exit status 0
 * only for "done", 1 for a failed check, 2 for "stop".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craton_pkcs11.h"

static CK_FUNCTION_LIST_PTR f;

static CK_OBJECT_HANDLE find_or_make_key(CK_SESSION_HANDLE s, const char *label)
{
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG n = 0;
  if (f->C_FindObjectsInit(s, q, 2) != CKR_OK) return CK_INVALID_HANDLE;
  f->C_FindObjects(s, &h, 1, &n);
  f->C_FindObjectsFinal(s);
  if (n == 1) return h;
  CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
  CK_ULONG len = 32;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &yes, sizeof yes},
                      {CKA_LABEL, (void *)label, strlen(label)}, {CKA_ENCRYPT, &yes, sizeof yes},
                      {CKA_DECRYPT, &yes, sizeof yes}};
  if (f->C_GenerateKey(s, &gen, t, 5, &h) != CKR_OK) return CK_INVALID_HANDLE;
  return h;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: %s <module.so> <user-pin> <key-label> <count>\n", argv[0]);
    return 1;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  CK_C_GetFunctionList gfl = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
  if (!gfl || gfl(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) {
    fprintf(stderr, "cannot load/initialize %s\n", argv[1]);
    return 1;
  }
  long count = atol(argv[4]);
  CK_SLOT_ID slot;
  CK_ULONG ns = 1;
  CK_SESSION_HANDLE s;
  CK_RV rv = f->C_GetSlotList(CK_TRUE, &slot, &ns);
  if (rv == CKR_OK) rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
  if (rv == CKR_OK) rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2]));
  CK_OBJECT_HANDLE key = rv == CKR_OK ? find_or_make_key(s, argv[3]) : CK_INVALID_HANDLE;
  if (key == CK_INVALID_HANDLE) {
    fprintf(stderr, "set-up failed (rv 0x%lx)\n", (unsigned long)rv);
    return 1;
  }

  static char outbuf[1 << 16];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  long i;
  int status = 0;
  for (i = 0; count == 0 || i < count; i++) {
    CK_BYTE iv[12] = {0}, pt[32], ct[48], back[48];
    snprintf((char *)pt, sizeof pt, "message %023ld", i);
    CK_GCM_PARAMS p = {iv, sizeof iv, 96, NULL, 0, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof p};
    CK_ULONG ctl = sizeof ct, bl = sizeof back;
    if ((rv = f->C_EncryptInit(s, &m, key)) != CKR_OK || (rv = f->C_Encrypt(s, pt, 32, ct, &ctl)) != CKR_OK) {
      status = 2;
      break;
    }
    static const CK_BYTE zero[12];
    if (memcmp(iv, zero, sizeof iv) == 0 || ctl != 48) {
      fprintf(stderr, "FAIL: encryption %ld: no IV written back (or %lu-byte output)\n", i, (unsigned long)ctl);
      status = 1;
      break;
    }
    printf("iv ");
    for (int j = 0; j < 12; j++) printf("%02x", iv[j]);
    putchar('\n');
    /* The same parameter block, now holding the token's IV, decrypts. */
    if ((rv = f->C_DecryptInit(s, &m, key)) != CKR_OK || (rv = f->C_Decrypt(s, ct, ctl, back, &bl)) != CKR_OK) {
      if (rv == CKR_ENCRYPTED_DATA_INVALID) {
        fprintf(stderr, "FAIL: encryption %ld does not decrypt with the returned IV\n", i);
        status = 1;
      } else {
        status = 2;
      }
      break;
    }
    if (bl != 32 || memcmp(back, pt, 32) != 0) {
      fprintf(stderr, "FAIL: encryption %ld decrypted to other bytes\n", i);
      status = 1;
      break;
    }
  }
  if (status == 0) printf("done %ld\n", i);
  else if (status == 2) printf("stop %ld rv=0x%lx\n", i, (unsigned long)rv);
  fflush(stdout);
  if (status == 0) {
    f->C_Logout(s);
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
  }
  return status;
}
