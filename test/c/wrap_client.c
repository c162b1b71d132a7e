/*
 * C_WrapKey as a C application calls it, for test/integration/wrap-private.test.ts:
 * length query (pWrappedKey NULL), a buffer one byte short (CKR_BUFFER_TOO_SMALL with the
 * length set again), then the exact buffer. The wrapping key is a session AES key made from
 * the 32-byte value read as 64 hex digits on stdin (never argv); the key to wrap is the
 * token private key with the given label.
 *
 * Usage: wrap_client <module.so> <user-pin> <private-key-label> <mechanism (hex)>
 * Prints "query <len>", "short <rv hex> <len>", "wrapped <len> <hex>" and exits 0, or the
 * first failing call and a non-zero exit. The user PIN is on argv as in module_client.c:
 * a throwaway test token.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "craton_pkcs11.h"

static int fail(const char *what, CK_RV rv)
{
  fprintf(stderr, "%s returned 0x%lx\n", what, (unsigned long)rv);
  return 1;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: %s <module.so> <user-pin> <private-key-label> <mechanism-hex>\n", argv[0]);
    return 2;
  }
  char hex[80] = {0};
  CK_BYTE value[32];
  if (!fgets(hex, sizeof hex, stdin) || strlen(hex) < 64) {
    fprintf(stderr, "stdin: expected 64 hex digits\n");
    return 2;
  }
  for (int i = 0; i < 32; i++) {
    unsigned b;
    if (sscanf(hex + 2 * i, "%2x", &b) != 1) return 2;
    value[i] = (CK_BYTE)b;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  CK_FUNCTION_LIST_PTR f;
  CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  CK_RV rv;
  if ((rv = gfl(&f)) != CKR_OK) return fail("C_GetFunctionList", rv);
  if ((rv = f->C_Initialize(NULL)) != CKR_OK) return fail("C_Initialize", rv);
  CK_SLOT_ID slots[16];
  CK_ULONG n = 16;
  if ((rv = f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK || n < 1) return fail("C_GetSlotList", rv);
  CK_SESSION_HANDLE s;
  if ((rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) != CKR_OK) return fail("C_OpenSession", rv);
  if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)argv[2], strlen(argv[2]))) != CKR_OK) return fail("C_Login", rv);

  CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE find[] = {{CKA_CLASS, &priv_class, sizeof priv_class}, {CKA_LABEL, argv[3], strlen(argv[3])}};
  CK_OBJECT_HANDLE key;
  if ((rv = f->C_FindObjectsInit(s, find, 2)) != CKR_OK) return fail("C_FindObjectsInit", rv);
  if ((rv = f->C_FindObjects(s, &key, 1, &n)) != CKR_OK || n != 1) return fail("C_FindObjects (one private key with that label)", rv);
  f->C_FindObjectsFinal(s);

  CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
  CK_KEY_TYPE aes = CKK_AES;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ATTRIBUTE kt[] = {
      {CKA_CLASS, &secret, sizeof secret}, {CKA_KEY_TYPE, &aes, sizeof aes}, {CKA_TOKEN, &no, sizeof no},
      {CKA_WRAP, &yes, sizeof yes},        {CKA_VALUE, value, sizeof value},
  };
  CK_OBJECT_HANDLE kek;
  rv = f->C_CreateObject(s, kt, 5, &kek);
  memset(value, 0, sizeof value);
  memset(hex, 0, sizeof hex);
  if (rv != CKR_OK) return fail("C_CreateObject (wrapping key)", rv);

  CK_MECHANISM m = {strtoul(argv[4], NULL, 16), NULL, 0};
  CK_ULONG len = 0;
  if ((rv = f->C_WrapKey(s, &m, kek, key, NULL, &len)) != CKR_OK) return fail("C_WrapKey (length query)", rv);
  printf("query %lu\n", (unsigned long)len);
  CK_BYTE *out = malloc(len + 1);
  if (!out) return 2;
  CK_ULONG shortlen = len - 1;
  rv = f->C_WrapKey(s, &m, kek, key, out, &shortlen);
  printf("short 0x%lx %lu\n", (unsigned long)rv, (unsigned long)shortlen);
  CK_ULONG got = len;
  if ((rv = f->C_WrapKey(s, &m, kek, key, out, &got)) != CKR_OK) return fail("C_WrapKey", rv);
  printf("wrapped %lu ", (unsigned long)got);
  for (CK_ULONG i = 0; i < got; i++) printf("%02x", out[i]);
  printf("\n");
  free(out);
  f->C_DestroyObject(s, kek);
  f->C_Logout(s);
  f->C_CloseSession(s);
  f->C_Finalize(NULL);
  return 0;
}
