/*
 * Module lifecycle: C_Initialize / C_Finalize, the locks (which must honour
 * the application's mutex callbacks), fork handling, and the function lists
 * and interfaces through which applications find the entry points.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "p11_30.h"

/* Guards the initialized state itself; exists before any C_Initialize, so it
 * cannot be one of the application's mutexes. */
static pthread_mutex_t state_mutex = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static pid_t owner_pid; /* the process that called C_Initialize */
static int debug_on;

/* The application's mutex callbacks, when it supplied them without
 * CKF_OS_LOCKING_OK; NULL CreateMutex means pthreads. */
static CK_C_INITIALIZE_ARGS app_locks;

/* ---- diagnostics ------------------------------------------------------------- */

void dbg_init(void)
{
  const char *d = getenv("CRATON_HSM_DEBUG");
  debug_on = d && strcmp(d, "1") == 0;
}

/* A PKCS#11 module must not write to the application's stderr unless asked. */
void dbg(const char *fmt, ...)
{
  if (!debug_on) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "craton-hsm: %s\n", line);
}

/* ---- locks ------------------------------------------------------------------ */

CK_RV mlock_new(mlock *l)
{
  if (app_locks.CreateMutex) return app_locks.CreateMutex(&l->m);
  pthread_mutex_t *m = malloc(sizeof *m);
  if (!m) return CKR_HOST_MEMORY;
  pthread_mutex_init(m, NULL);
  l->m = m;
  return CKR_OK;
}

void mlock_free(mlock *l)
{
  if (!l->m) return;
  if (app_locks.CreateMutex) {
    app_locks.DestroyMutex(l->m);
  } else {
    pthread_mutex_destroy(l->m);
    free(l->m);
  }
  l->m = NULL;
}

void mlock_take(mlock *l)
{
  if (app_locks.CreateMutex) app_locks.LockMutex(l->m);
  else pthread_mutex_lock(l->m);
}

void mlock_give(mlock *l)
{
  if (app_locks.CreateMutex) app_locks.UnlockMutex(l->m);
  else pthread_mutex_unlock(l->m);
}

CK_RV module_ready(void)
{
  /* getpid() rather than only an atfork flag: a raw clone() skips atfork handlers. */
  return initialized && owner_pid == getpid() ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* ---- fork ------------------------------------------------------------------- */

/* Hold the module's short-lived locks across fork() so the child inherits
 * consistent tables; no lock is ever held across socket I/O except the
 * HELLO serialiser, which the child never touches before re-creating it. */
static void before_fork(void)
{
  pthread_mutex_lock(&state_mutex);
  if (initialized) sessions_lock_for_fork(1), pool_lock_for_fork(1);
}

static void after_fork_parent(void)
{
  if (initialized) pool_lock_for_fork(0), sessions_lock_for_fork(0);
  pthread_mutex_unlock(&state_mutex);
}

static void after_fork_child(void)
{
  if (initialized) pool_lock_for_fork(0), sessions_lock_for_fork(0);
  pthread_mutex_unlock(&state_mutex);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(before_fork, after_fork_parent, after_fork_child); }

/* A child that inherited the parent's module drops it without a word to the daemon. */
static void forget_inherited(void)
{
  pool_forget();
  sessions_forget();
  initialized = 0;
}

/* ---- C_Initialize / C_Finalize ---------------------------------------------- */

static CK_RV check_init_args(const CK_C_INITIALIZE_ARGS *a)
{
  if (!a) return CKR_OK;
  if (a->pReserved) return CKR_ARGUMENTS_BAD;
  int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex + !!a->UnlockMutex;
  if (given != 0 && given != 4) return CKR_ARGUMENTS_BAD;
  return CKR_OK;
}

CK_EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
  const CK_C_INITIALIZE_ARGS *a = pInitArgs;
  CK_RV rv = check_init_args(a);
  if (rv != CKR_OK) return rv;
  pthread_once(&atfork_once, register_atfork);

  pthread_mutex_lock(&state_mutex);
  if (initialized && owner_pid == getpid()) {
    pthread_mutex_unlock(&state_mutex);
    return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  }
  if (initialized) forget_inherited(); /* we are a forked child: start a fresh application */

  dbg_init();
  memset(&app_locks, 0, sizeof app_locks);
  if (a && a->CreateMutex && !(a->flags & CKF_OS_LOCKING_OK)) app_locks = *a;

  if ((rv = sessions_start()) == CKR_OK) {
    if ((rv = pool_start()) == CKR_OK) {
      owner_pid = getpid();
      initialized = 1;
    } else {
      sessions_stop();
    }
  }
  pthread_mutex_unlock(&state_mutex);
  return rv;
}

CK_EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
  if (pReserved) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&state_mutex);
  CK_RV rv = module_ready();
  if (rv == CKR_OK) {
    pool_stop();
    sessions_stop();
    initialized = 0;
  }
  pthread_mutex_unlock(&state_mutex);
  return rv;
}

/* ---- answered locally --------------------------------------------------------- */

static void blank_copy(CK_UTF8CHAR *dst, size_t n, const char *s)
{
  memset(dst, ' ', n);
  memcpy(dst, s, strlen(s) < n ? strlen(s) : n);
}

CK_EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
  CK_RV rv = module_ready();
  if (rv != CKR_OK) return rv;
  if (!pInfo) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion.major = 2;
  pInfo->cryptokiVersion.minor = 40;
  blank_copy(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "Craton HSM");
  blank_copy(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "Craton HSM PKCS#11 proxy");
  pInfo->libraryVersion.major = 0;
  pInfo->libraryVersion.minor = 1;
  return CKR_OK;
}

/* No function runs in parallel with its caller (PKCS#11 legacy parallel mode). */
CK_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
  (void)hSession;
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

CK_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
  (void)hSession;
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

/* Tokens are never inserted or removed, so there is never an event. */
CK_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
  (void)pSlot;
  (void)pReserved;
  CK_RV rv = module_ready();
  if (rv != CKR_OK) return rv;
  return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---- function lists and interfaces -------------------------------------------- */

#define FN_2_40 \
  C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, \
      C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession, \
      C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState, C_SetOperationState, C_Login, C_Logout, \
      C_CreateObject, C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, \
      C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate, \
      C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest, \
      C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal, \
      C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal, \
      C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate, \
      C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey, \
      C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus, C_CancelFunction, C_WaitForSlotEvent

static CK_FUNCTION_LIST list_2_40 = {{2, 40}, FN_2_40};

static craton_function_list_3_0 list_3_0 = {
    {3, 0},
    FN_2_40,
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal,
};

CK_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
  if (!ppFunctionList) return CKR_ARGUMENTS_BAD;
  *ppFunctionList = &list_2_40;
  return CKR_OK;
}

/* The 2.40 list comes first: it is the default interface, and matches what
 * C_GetInfo reports. The 3.0 list is there for applications that ask for it. */
static CK_INTERFACE interfaces[] = {
    {(CK_CHAR *)"PKCS 11", &list_2_40, 0},
    {(CK_CHAR *)"PKCS 11", &list_3_0, 0},
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

CK_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
  if (!pulCount) return CKR_ARGUMENTS_BAD;
  if (!pInterfacesList) {
    *pulCount = N_INTERFACES;
    return CKR_OK;
  }
  if (*pulCount < N_INTERFACES) {
    *pulCount = N_INTERFACES;
    return CKR_BUFFER_TOO_SMALL;
  }
  memcpy(pInterfacesList, interfaces, sizeof interfaces);
  *pulCount = N_INTERFACES;
  return CKR_OK;
}

CK_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                               CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
  if (!ppInterface) return CKR_ARGUMENTS_BAD;
  for (size_t i = 0; i < N_INTERFACES; i++) {
    const CK_INTERFACE *it = &interfaces[i];
    const CK_VERSION *v = it->pFunctionList; /* every function list starts with its version */
    if (pInterfaceName && strcmp((const char *)pInterfaceName, (const char *)it->pInterfaceName) != 0) continue;
    if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor)) continue;
    if ((it->flags & flags) != flags) continue;
    *ppInterface = &interfaces[i];
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}
