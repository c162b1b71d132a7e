/*
 * A plain C PKCS#11 application against the real module and daemon, run under
 * valgrind memcheck by test/integration/c-client.test.ts. It checks the rules that
 * live in the module (length queries, CKR_BUFFER_TOO_SMALL with the operation still
 * active, per-attribute C_GetAttributeValue results, threads, fork) and exits non-zero
 * on the first broken expectation, naming it.
 *
 * Usage: module_client <module.so> <so-pin> <user-pin>   (token in slot 0 initialised)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "craton_pkcs11.h"

static CK_FUNCTION_LIST_PTR f;
static int failures;

#define EXPECT_RV(call, want)                                                                      \
  do {                                                                                             \
    CK_RV rv_ = (call);                                                                            \
    if (rv_ != (CK_RV)(want)) {                                                                    \
      fprintf(stderr, "FAIL %s:%d: %s returned 0x%lx, expected 0x%lx\n", __FILE__, __LINE__, #call, \
              (unsigned long)rv_, (unsigned long)(want));                                          \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#define EXPECT(cond)                                                                         \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "FAIL %s:%d: expected %s\n", __FILE__, __LINE__, #cond);               \
      failures++;                                                                            \
    }                                                                                        \
  } while (0)

static const CK_BYTE P256_OID[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static void ec_keypair(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
  CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)P256_OID, sizeof P256_OID}, {CKA_VERIFY, &yes, sizeof yes}};
  CK_ATTRIBUTE vt[] = {{CKA_SIGN, &yes, sizeof yes}, {CKA_SENSITIVE, &yes, sizeof yes}};
  EXPECT_RV(f->C_GenerateKeyPair(s, &m, pt, 2, vt, 2, pub, priv), CKR_OK);
}

struct worker {
  CK_SLOT_ID slot;
  CK_OBJECT_HANDLE priv, pub;
  int ok;
};

/* Each thread has its own session; all share the application's login. */
static void *sign_loop(void *arg)
{
  struct worker *w = arg;
  CK_SESSION_HANDLE s;
  if (f->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) return NULL;
  CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
  CK_BYTE msg[] = "threaded message", sig[64];
  int i, good = 0;
  for (i = 0; i < 20; i++) {
    CK_ULONG len = sizeof sig;
    if (f->C_SignInit(s, &m, w->priv) != CKR_OK) break;
    if (f->C_Sign(s, msg, sizeof msg, sig, &len) != CKR_OK || len != 64) break;
    if (f->C_VerifyInit(s, &m, w->pub) != CKR_OK) break;
    if (f->C_Verify(s, msg, sizeof msg, sig, len) != CKR_OK) break;
    good++;
  }
  f->C_CloseSession(s);
  w->ok = good == 20;
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: %s <module.so> <so-pin> <user-pin>\n", argv[0]);
    return 2;
  }
  const char *user_pin = argv[3];
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  EXPECT_RV(gfl(&f), CKR_OK);

  /* Before C_Initialize nothing works; bad arguments are refused. */
  CK_ULONG count = 0;
  EXPECT_RV(f->C_GetSlotList(CK_TRUE, NULL, &count), CKR_CRYPTOKI_NOT_INITIALIZED);
  CK_C_INITIALIZE_ARGS bad = {0};
  bad.pReserved = &bad;
  EXPECT_RV(f->C_Initialize(&bad), CKR_ARGUMENTS_BAD);
  CK_C_INITIALIZE_ARGS ia = {0};
  ia.flags = CKF_OS_LOCKING_OK;
  EXPECT_RV(f->C_Initialize(&ia), CKR_OK);
  EXPECT_RV(f->C_Initialize(&ia), CKR_CRYPTOKI_ALREADY_INITIALIZED);

  /* Slot list: length query, short buffer, full buffer. */
  EXPECT_RV(f->C_GetSlotList(CK_TRUE, NULL, &count), CKR_OK);
  EXPECT(count >= 1);
  CK_SLOT_ID slots[16];
  CK_ULONG few = 0;
  EXPECT_RV(f->C_GetSlotList(CK_TRUE, slots, &few), CKR_BUFFER_TOO_SMALL);
  EXPECT(few == count);
  EXPECT_RV(f->C_GetSlotList(CK_TRUE, slots, &count), CKR_OK);
  CK_SLOT_ID slot = slots[0];
  EXPECT_RV(f->C_GetSlotList(CK_TRUE, slots, NULL), CKR_ARGUMENTS_BAD);

  CK_SESSION_HANDLE s;
  EXPECT_RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
  EXPECT_RV(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)), CKR_OK);

  CK_OBJECT_HANDLE pub, priv;
  ec_keypair(s, &pub, &priv);

  /* Length query and short buffer keep the operation; the retry gets the same
   * (randomised) ECDSA signature, so no second signature was made. */
  CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
  CK_BYTE msg[] = "buffer conventions", sig[128], sig2[128];
  CK_ULONG len = 0, shortlen = 10;
  EXPECT_RV(f->C_SignInit(s, &m, priv), CKR_OK);
  EXPECT_RV(f->C_Sign(s, msg, sizeof msg, NULL, &len), CKR_OK);
  EXPECT(len == 64);
  EXPECT_RV(f->C_Sign(s, msg, sizeof msg, sig2, &shortlen), CKR_BUFFER_TOO_SMALL);
  EXPECT(shortlen == 64);
  EXPECT_RV(f->C_Sign(s, msg, sizeof msg, sig, &len), CKR_OK);
  CK_ULONG again = sizeof sig2;
  EXPECT_RV(f->C_Sign(s, msg, sizeof msg, sig2, &again), CKR_OPERATION_NOT_INITIALIZED);
  EXPECT_RV(f->C_VerifyInit(s, &m, pub), CKR_OK);
  EXPECT_RV(f->C_Verify(s, msg, sizeof msg, sig, len), CKR_OK);
  sig[3] ^= 0x40;
  EXPECT_RV(f->C_VerifyInit(s, &m, pub), CKR_OK);
  EXPECT_RV(f->C_Verify(s, msg, sizeof msg, sig, len), CKR_SIGNATURE_INVALID);

  /* C_GetAttributeValue: lengths, a sensitive value, an invalid type, a short buffer. */
  CK_ATTRIBUTE q[3] = {{CKA_EC_PARAMS, NULL, 0}, {CKA_VALUE, NULL, 0}, {CKA_MODULUS, NULL, 0}};
  EXPECT_RV(f->C_GetAttributeValue(s, priv, q, 3), CKR_ATTRIBUTE_SENSITIVE);
  EXPECT(q[0].ulValueLen == sizeof P256_OID);
  EXPECT(q[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
  EXPECT(q[2].ulValueLen == CK_UNAVAILABLE_INFORMATION);
  CK_BYTE tiny[2];
  CK_ATTRIBUTE q2[1] = {{CKA_EC_PARAMS, tiny, sizeof tiny}};
  EXPECT_RV(f->C_GetAttributeValue(s, priv, q2, 1), CKR_BUFFER_TOO_SMALL);
  EXPECT(q2[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
  CK_BYTE params[32];
  CK_ATTRIBUTE q3[1] = {{CKA_EC_PARAMS, params, sizeof params}};
  EXPECT_RV(f->C_GetAttributeValue(s, priv, q3, 1), CKR_OK);
  EXPECT(q3[0].ulValueLen == sizeof P256_OID && memcmp(params, P256_OID, sizeof P256_OID) == 0);

  /* Digest: NULL query then the value. */
  CK_MECHANISM dm = {CKM_SHA256, NULL, 0};
  CK_BYTE digest[32];
  CK_ULONG dlen = 0;
  EXPECT_RV(f->C_DigestInit(s, &dm), CKR_OK);
  EXPECT_RV(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, NULL, &dlen), CKR_OK);
  EXPECT(dlen == 32);
  EXPECT_RV(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &dlen), CKR_OK);
  EXPECT(digest[0] == 0xba && digest[1] == 0x78 && digest[31] == 0xad); /* FIPS 180-2 "abc" */

  /* Threads: four sessions signing at once. */
  struct worker w[4];
  pthread_t th[4];
  int i;
  for (i = 0; i < 4; i++) {
    w[i] = (struct worker){slot, priv, pub, 0};
    pthread_create(&th[i], NULL, sign_loop, &w[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    EXPECT(w[i].ok);
  }

  /* Fork: the child inherits an initialised module but must initialise its own. */
  fflush(stderr);
  pid_t child = fork();
  if (child == 0) {
    CK_SESSION_INFO info;
    int bad_child = f->C_GetSessionInfo(s, &info) != CKR_CRYPTOKI_NOT_INITIALIZED;
    if (f->C_Initialize(&ia) != CKR_OK) bad_child = 1;
    CK_SESSION_HANDLE cs;
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &cs) != CKR_OK) bad_child = 1;
    CK_BYTE rnd[16];
    if (f->C_GenerateRandom(cs, rnd, sizeof rnd) != CKR_OK) bad_child = 1;
    f->C_Finalize(NULL);
    _exit(bad_child ? 1 : 0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* the parent's session is untouched by the child */
  CK_SESSION_INFO info;
  EXPECT_RV(f->C_GetSessionInfo(s, &info), CKR_OK);
  EXPECT(info.state == CKS_RW_USER_FUNCTIONS);

  EXPECT_RV(f->C_Logout(s), CKR_OK);
  EXPECT_RV(f->C_CloseSession(s), CKR_OK);
  EXPECT_RV(f->C_Finalize((void *)1), CKR_ARGUMENTS_BAD);
  EXPECT_RV(f->C_Finalize(NULL), CKR_OK);
  EXPECT_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
  dlclose(lib);
  if (failures) {
    fprintf(stderr, "%d expectation(s) failed\n", failures);
    return 1;
  }
  printf("module_client: all checks passed\n");
  return 0;
}
