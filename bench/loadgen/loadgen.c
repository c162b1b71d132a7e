/*
 * craton-loadgen: a PKCS#11 load generator for `npm run bench` (bench/run.mjs).
 *
 * dlopens any PKCS#11 module, logs in once, optionally creates its keys through the
 * module (--setup: token objects labelled bench-ec, bench-rsa, bench-aes, made only if
 * missing), then for each operation and each client count runs a warm-up and a fixed
 * measuring window, one session per client, and prints one JSON line per cell:
 *   {"op":"...","clients":N,"mode":"threads","ops":n,"seconds":s,"opsPerSec":x,"p50Us":a,"p99Us":b}
 * or {"op":...,"clients":N,"error":"CKR_..."}.
 *
 * Clients are threads of this process, except:
 *  - login-cycle (C_OpenSession+C_Login+C_Logout+C_CloseSession): the login state belongs to
 *    the application, so N concurrent cycles need N applications; each client is a forked
 *    process with its own dlopen/C_Initialize.
 *  - unix-pingpong: no module at all; the floor for any module -> socket -> server design.
 *    Each client thread has an AF_UNIX stream socketpair to a forked echo process and does a
 *    64-byte request / 64-byte response round trip per op.
 * Both run before the module is loaded in this process (fork after C_Initialize is undefined).
 *
 * Usage: craton-loadgen --module PATH [--token LABEL] [--pin PIN] [--setup]
 *                       --ops a,b,... [--clients 1,2,4,8] [--seconds 1] [--warmup-ms 150]
 * Operations: random32 sha256-64 sha256-1m aes-gcm-4k ecdsa-p256-sign ecdsa-p256-verify
 *             rsa2048-sign login-cycle unix-pingpong
 * Latency: per-op wall time, merged log-scale histogram (2.5 % buckets) over all clients.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "craton_pkcs11.h"

#define MAX_CLIENTS 64
#define NBUCKETS 1100 /* ln(ns) * 40: up to e^27.5 ns */
#define BUCKET_SCALE 40.0

/* ---- shared state (MAP_SHARED so forked clients can report) -------------------------- */
struct client_result {
    uint64_t ops;
    CK_RV rv; /* first failure, 0 if none */
    char err[96];
    uint64_t hist[NBUCKETS];
};
struct shared {
    atomic_int phase; /* 0 warm-up, 1 measuring, 2 stop */
    atomic_int ready;
    struct client_result r[MAX_CLIENTS];
};
static struct shared *sh;

static const char *module_path;
static const char *token_label = "bench";
static const char *user_pin = "123456";
static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static void *dl;
static CK_OBJECT_HANDLE k_ec_priv, k_ec_pub, k_rsa, k_aes;
static uint32_t iv_salt;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *rv_name(CK_RV rv, char *buf, size_t n)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } t[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"},
        {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
        {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
        {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
        {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
        {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].rv == rv)
            return t[i].name;
    snprintf(buf, n, "CKR_0x%lx", (unsigned long)rv);
    return buf;
}

static void die(const char *what, CK_RV rv)
{
    char b[32];
    fprintf(stderr, "craton-loadgen: %s: %s\n", what, rv_name(rv, b, sizeof(b)));
    exit(1);
}

/* ---- module loading -------------------------------------------------------------------- */
static CK_RV load_module(void)
{
    dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "craton-loadgen: dlopen %s: %s\n", module_path, dlerror());
        exit(1);
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (!gfl) {
        fprintf(stderr, "craton-loadgen: %s has no C_GetFunctionList\n", module_path);
        exit(1);
    }
    CK_RV rv = gfl(&p11);
    if (rv != CKR_OK)
        return rv;
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK; /* p11-kit-client.so refuses no-locking */
    rv = p11->C_Initialize(&args);
    if (rv != CKR_OK)
        return rv;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    char want[32];
    memset(want, ' ', sizeof(want));
    memcpy(want, token_label, strnlen(token_label, 32));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, want, 32) == 0) {
            slot = slots[i];
            return CKR_OK;
        }
    }
    fprintf(stderr, "craton-loadgen: no token labelled \"%s\" in %s (pid %d)\n", token_label, module_path, (int)getpid());
    return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV open_session(CK_SESSION_HANDLE *s)
{
    return p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

static CK_OBJECT_HANDLE find_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, t, 2);
    if (rv != CKR_OK)
        die("C_FindObjectsInit", rv);
    rv = p11->C_FindObjects(s, h, 2, &n);
    p11->C_FindObjectsFinal(s);
    if (rv != CKR_OK)
        die("C_FindObjects", rv);
    return n >= 1 ? h[0] : CK_INVALID_HANDLE;
}

static void setup_keys(CK_SESSION_HANDLE s, int create)
{
    static CK_BBOOL yes = CK_TRUE;
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static CK_BYTE e65537[] = {1, 0, 1};
    CK_ULONG bits = 2048, aes_len = 32;
    CK_OBJECT_HANDLE pub, priv;
    CK_RV rv;

    if (create && find_one(s, CKO_PRIVATE_KEY, "bench-ec") == CK_INVALID_HANDLE) {
        CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
        CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "bench-ec", 8}, {CKA_EC_PARAMS, p256, sizeof(p256)}, {CKA_VERIFY, &yes, 1}};
        CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "bench-ec", 8}, {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1}, {CKA_SIGN, &yes, 1}};
        if ((rv = p11->C_GenerateKeyPair(s, &m, pt, 4, kt, 5, &pub, &priv)) != CKR_OK)
            die("C_GenerateKeyPair EC P-256", rv);
    }
    if (create && find_one(s, CKO_PRIVATE_KEY, "bench-rsa") == CK_INVALID_HANDLE) {
        CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
        CK_ATTRIBUTE pt[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "bench-rsa", 9}, {CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_PUBLIC_EXPONENT, e65537, 3}, {CKA_VERIFY, &yes, 1}};
        CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "bench-rsa", 9}, {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1}, {CKA_SIGN, &yes, 1}};
        if ((rv = p11->C_GenerateKeyPair(s, &m, pt, 5, kt, 5, &pub, &priv)) != CKR_OK)
            die("C_GenerateKeyPair RSA-2048", rv);
    }
    if (create && find_one(s, CKO_SECRET_KEY, "bench-aes") == CK_INVALID_HANDLE) {
        CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
        CK_ATTRIBUTE kt[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, "bench-aes", 9}, {CKA_VALUE_LEN, &aes_len, sizeof(aes_len)}, {CKA_PRIVATE, &yes, 1},
                             {CKA_SENSITIVE, &yes, 1}, {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1}};
        if ((rv = p11->C_GenerateKey(s, &m, kt, 7, &priv)) != CKR_OK)
            die("C_GenerateKey AES-256", rv);
    }
    k_ec_priv = find_one(s, CKO_PRIVATE_KEY, "bench-ec");
    k_ec_pub = find_one(s, CKO_PUBLIC_KEY, "bench-ec");
    k_rsa = find_one(s, CKO_PRIVATE_KEY, "bench-rsa");
    k_aes = find_one(s, CKO_SECRET_KEY, "bench-aes");
}

/* ---- operations ------------------------------------------------------------------------ */
struct ctx {
    int id;
    CK_SESSION_HANDLE s;
    CK_BYTE in[32];
    CK_BYTE sig[64];
    CK_ULONG sig_len;
    CK_BYTE *big;   /* 1 MiB input */
    CK_BYTE *out;   /* 4 KiB + tag */
    CK_BYTE iv[12];
    uint32_t ivc;
    int fd; /* unix-pingpong */
};
typedef CK_RV (*op_fn)(struct ctx *);

static CK_RV op_random32(struct ctx *c)
{
    CK_BYTE b[32];
    return p11->C_GenerateRandom(c->s, b, 32);
}
static CK_RV digest(struct ctx *c, CK_BYTE *data, CK_ULONG len)
{
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK_BYTE md[32];
    CK_ULONG n = sizeof(md);
    CK_RV rv = p11->C_DigestInit(c->s, &m);
    return rv != CKR_OK ? rv : p11->C_Digest(c->s, data, len, md, &n);
}
static CK_RV op_sha256_64(struct ctx *c) { return digest(c, c->big, 64); }
static CK_RV op_sha256_1m(struct ctx *c) { return digest(c, c->big, 1 << 20); }
static CK_RV op_aes_gcm_4k(struct ctx *c)
{
    /* A fresh IV per message: salt (per run) | client id | counter. */
    uint32_t ctr = c->ivc++;
    memcpy(c->iv, &iv_salt, 4);
    c->iv[4] = (CK_BYTE)c->id;
    c->iv[5] = (CK_BYTE)getpid();
    c->iv[6] = (CK_BYTE)(getpid() >> 8);
    c->iv[7] = (CK_BYTE)(getpid() >> 16);
    memcpy(c->iv + 8, &ctr, 4);
    CK_GCM_PARAMS gp = {c->iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_ULONG n = 4096 + 16;
    CK_RV rv = p11->C_EncryptInit(c->s, &m, k_aes);
    return rv != CKR_OK ? rv : p11->C_Encrypt(c->s, c->big, 4096, c->out, &n);
}
static CK_RV op_ecdsa_sign(struct ctx *c)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE sig[64];
    CK_ULONG n = sizeof(sig);
    CK_RV rv = p11->C_SignInit(c->s, &m, k_ec_priv);
    return rv != CKR_OK ? rv : p11->C_Sign(c->s, c->in, 32, sig, &n);
}
static CK_RV op_ecdsa_verify(struct ctx *c)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_RV rv = p11->C_VerifyInit(c->s, &m, k_ec_pub);
    return rv != CKR_OK ? rv : p11->C_Verify(c->s, c->in, 32, c->sig, c->sig_len);
}
static CK_RV op_rsa_sign(struct ctx *c)
{
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE sig[256];
    CK_ULONG n = sizeof(sig);
    CK_RV rv = p11->C_SignInit(c->s, &m, k_rsa);
    return rv != CKR_OK ? rv : p11->C_Sign(c->s, c->in, 32, sig, &n);
}
static CK_RV op_login_cycle(struct ctx *c)
{
    CK_SESSION_HANDLE s;
    CK_RV rv = open_session(&s);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
    if (rv == CKR_OK)
        rv = p11->C_Logout(s);
    CK_RV rv2 = p11->C_CloseSession(s);
    (void)c;
    return rv != CKR_OK ? rv : rv2;
}
static CK_RV op_pingpong(struct ctx *c)
{
    CK_BYTE b[64];
    memset(b, c->id, sizeof(b));
    if (write(c->fd, b, 64) != 64)
        return CKR_DEVICE_ERROR;
    size_t got = 0;
    while (got < 64) {
        ssize_t r = read(c->fd, b + got, 64 - got);
        if (r <= 0)
            return CKR_DEVICE_ERROR;
        got += (size_t)r;
    }
    return CKR_OK;
}

enum kind { K_THREAD, K_PROC, K_PINGPONG };
static const struct opdef {
    const char *name;
    op_fn fn;
    enum kind kind;
} OPS[] = {
    {"random32", op_random32, K_THREAD},
    {"sha256-64", op_sha256_64, K_THREAD},
    {"sha256-1m", op_sha256_1m, K_THREAD},
    {"aes-gcm-4k", op_aes_gcm_4k, K_THREAD},
    {"ecdsa-p256-sign", op_ecdsa_sign, K_THREAD},
    {"ecdsa-p256-verify", op_ecdsa_verify, K_THREAD},
    {"rsa2048-sign", op_rsa_sign, K_THREAD},
    {"login-cycle", op_login_cycle, K_PROC},
    {"unix-pingpong", op_pingpong, K_PINGPONG},
};

/* ---- the measuring loop ---------------------------------------------------------------- */
struct job {
    const struct opdef *op;
    struct ctx c;
};

static void record(struct client_result *r, uint64_t ns)
{
    int b = ns < 2 ? 0 : (int)(log((double)ns) * BUCKET_SCALE);
    if (b >= NBUCKETS)
        b = NBUCKETS - 1;
    r->hist[b]++;
    r->ops++;
}

static void fail(struct client_result *r, CK_RV rv, const char *what)
{
    char b[32];
    if (r->rv == 0) {
        r->rv = rv ? rv : CKR_GENERAL_ERROR;
        snprintf(r->err, sizeof(r->err), "%s%s%s", rv_name(rv, b, sizeof(b)), what ? " in " : "", what ? what : "");
    }
}

static void client_prepare(struct job *j)
{
    struct client_result *r = &sh->r[j->c.id];
    CK_RV rv;
    j->c.big = calloc(1, 1 << 20);
    j->c.out = calloc(1, 4096 + 64);
    for (int i = 0; i < 32; i++)
        j->c.in[i] = (CK_BYTE)(i * 7 + 1);
    if (j->op->kind == K_PINGPONG)
        return;
    if ((rv = open_session(&j->c.s)) != CKR_OK)
        return fail(r, rv, "C_OpenSession");
    if (j->op->fn == op_ecdsa_verify) {
        CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
        j->c.sig_len = sizeof(j->c.sig);
        if ((rv = p11->C_SignInit(j->c.s, &m, k_ec_priv)) != CKR_OK ||
            (rv = p11->C_Sign(j->c.s, j->c.in, 32, j->c.sig, &j->c.sig_len)) != CKR_OK)
            return fail(r, rv, "C_Sign (for the signature to verify)");
    }
}

static void client_loop(struct job *j)
{
    struct client_result *r = &sh->r[j->c.id];
    if (r->rv == 0) {
        CK_RV rv = j->op->fn(&j->c); /* once: an unsupported operation fails here */
        if (rv != CKR_OK)
            fail(r, rv, NULL);
    }
    atomic_fetch_add(&sh->ready, 1);
    if (r->rv != 0)
        return;
    while (atomic_load(&sh->phase) == 0) {
        CK_RV rv = j->op->fn(&j->c);
        if (rv != CKR_OK)
            return fail(r, rv, NULL);
    }
    for (;;) {
        uint64_t t0 = now_ns();
        if (atomic_load(&sh->phase) != 1)
            break;
        CK_RV rv = j->op->fn(&j->c);
        uint64_t t1 = now_ns();
        if (rv != CKR_OK)
            return fail(r, rv, NULL);
        if (atomic_load(&sh->phase) == 1) /* ended inside the window */
            record(r, t1 - t0);
    }
}

static void client_finish(struct job *j)
{
    if (j->op->kind != K_PINGPONG && j->c.s)
        p11->C_CloseSession(j->c.s);
    if (j->c.fd > 0)
        close(j->c.fd);
    free(j->c.big);
    free(j->c.out);
}

static void *thread_main(void *arg)
{
    struct job *j = arg;
    client_prepare(j);
    client_loop(j);
    client_finish(j);
    return NULL;
}

static void echo_server(int fd)
{
    char b[4096];
    for (;;) {
        ssize_t n = read(fd, b, sizeof(b));
        if (n <= 0)
            _exit(0);
        if (write(fd, b, (size_t)n) != n)
            _exit(0);
    }
}

static double g_seconds = 1.0, g_warmup = 0.15;

static void run_cell(const struct opdef *op, int n)
{
    memset(sh, 0, sizeof(*sh));
    struct job jobs[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    pid_t pids[MAX_CLIENTS * 2];
    int npids = 0;
    memset(jobs, 0, sizeof(jobs));

    for (int i = 0; i < n; i++) {
        jobs[i].op = op;
        jobs[i].c.id = i;
        if (op->kind == K_PINGPONG) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
                perror("socketpair");
                exit(1);
            }
            pid_t p = fork();
            if (p == 0) {
                close(sv[0]);
                echo_server(sv[1]);
            }
            pids[npids++] = p;
            close(sv[1]);
            jobs[i].c.fd = sv[0];
        }
        if (op->kind == K_PROC) {
            pid_t p = fork();
            if (p == 0) {
                /* A separate application: its own dlopen, C_Initialize and login state. */
                CK_RV rv = load_module();
                if (rv != CKR_OK) {
                    fail(&sh->r[i], rv, "C_Initialize/C_GetSlotList");
                    atomic_fetch_add(&sh->ready, 1);
                    _exit(0);
                }
                k_aes = k_rsa = k_ec_pub = k_ec_priv = CK_INVALID_HANDLE;
                thread_main(&jobs[i]);
                p11->C_Finalize(NULL);
                _exit(0);
            }
            pids[npids++] = p;
            /* Start the applications one after another (SoftHSM2's file store races otherwise). */
            double until = now_s() + 60;
            while (atomic_load(&sh->ready) < i + 1 && now_s() < until)
                sleep_s(0.001);
        } else if (pthread_create(&th[i], NULL, thread_main, &jobs[i]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
    double deadline = now_s() + 60;
    while (atomic_load(&sh->ready) < n && now_s() < deadline)
        sleep_s(0.002);
    sleep_s(g_warmup);
    double t0 = now_s();
    atomic_store(&sh->phase, 1);
    sleep_s(g_seconds);
    atomic_store(&sh->phase, 2);
    double t1 = now_s();
    if (op->kind != K_PROC)
        for (int i = 0; i < n; i++)
            pthread_join(th[i], NULL);
    if (op->kind == K_PINGPONG)
        for (int i = 0; i < n; i++)
            close(jobs[i].c.fd);
    for (int i = 0; i < npids; i++)
        waitpid(pids[i], NULL, 0);

    static uint64_t hist[NBUCKETS];
    memset(hist, 0, sizeof(hist));
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sh->r[i].rv != 0) {
            printf("{\"op\":\"%s\",\"clients\":%d,\"error\":\"%s\"}\n", op->name, n, sh->r[i].err);
            fflush(stdout);
            return;
        }
        total += sh->r[i].ops;
        for (int b = 0; b < NBUCKETS; b++)
            hist[b] += sh->r[i].hist[b];
    }
    double q[2] = {0.5, 0.99}, us[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        uint64_t want = (uint64_t)ceil(q[k] * (double)total), acc = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            acc += hist[b];
            if (acc >= want && want > 0) {
                us[k] = exp((b + 0.5) / BUCKET_SCALE) / 1000.0;
                break;
            }
        }
    }
    char p50[32] = "null", p99[32] = "null";
    if (total > 0) {
        snprintf(p50, sizeof(p50), "%.1f", us[0]);
        snprintf(p99, sizeof(p99), "%.1f", us[1]);
    }
    printf("{\"op\":\"%s\",\"clients\":%d,\"mode\":\"%s\",\"ops\":%llu,\"seconds\":%.3f,\"opsPerSec\":%.1f,\"p50Us\":%s,\"p99Us\":%s}\n", op->name, n,
           op->kind == K_PROC ? "processes" : "threads", (unsigned long long)total, t1 - t0, (double)total / (t1 - t0), p50, p99);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: craton-loadgen --module PATH [--token LABEL] [--pin PIN] [--setup] --ops a,b [--clients 1,2,4,8] [--seconds S] [--warmup-ms MS]\nops:");
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++)
        fprintf(stderr, " %s", OPS[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *ops_arg = NULL, *clients_arg = "1,2,4,8";
    int do_setup = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--setup")) {
            do_setup = 1;
            continue;
        }
        if (!v)
            usage();
        if (!strcmp(a, "--module")) module_path = v;
        else if (!strcmp(a, "--token")) token_label = v;
        else if (!strcmp(a, "--pin")) user_pin = v;
        else if (!strcmp(a, "--ops")) ops_arg = v;
        else if (!strcmp(a, "--clients")) clients_arg = v;
        else if (!strcmp(a, "--seconds")) g_seconds = atof(v);
        else if (!strcmp(a, "--warmup-ms")) g_warmup = atof(v) / 1000.0;
        else usage();
        i++;
    }
    if (!ops_arg || g_seconds <= 0)
        usage();

    const struct opdef *ops[32];
    int nops = 0;
    char *list = strdup(ops_arg);
    for (char *tok = strtok(list, ","); tok && nops < 32; tok = strtok(NULL, ",")) {
        const struct opdef *d = NULL;
        for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++)
            if (!strcmp(OPS[i].name, tok))
                d = &OPS[i];
        if (!d) {
            fprintf(stderr, "craton-loadgen: unknown op %s\n", tok);
            usage();
        }
        ops[nops++] = d;
    }
    int clients[16], nclients = 0;
    char *cl = strdup(clients_arg);
    for (char *tok = strtok(cl, ","); tok && nclients < 16; tok = strtok(NULL, ",")) {
        int c = atoi(tok);
        if (c < 1 || c > MAX_CLIENTS) {
            fprintf(stderr, "craton-loadgen: clients must be 1..%d\n", MAX_CLIENTS);
            exit(2);
        }
        clients[nclients++] = c;
    }

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    int ur = open("/dev/urandom", O_RDONLY);
    if (ur < 0 || read(ur, &iv_salt, 4) != 4) {
        perror("/dev/urandom");
        return 1;
    }
    close(ur);

    /* Forking ops first: this process has not loaded the module yet. */
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < nops; k++) {
            int forking = ops[k]->kind != K_THREAD;
            if (forking != (pass == 0))
                continue;
            if (ops[k]->kind != K_PINGPONG && !module_path)
                usage();
            if (pass == 1 && !p11) {
                CK_RV rv = load_module();
                if (rv != CKR_OK)
                    die("C_Initialize", rv);
                CK_SESSION_HANDLE s;
                if ((rv = open_session(&s)) != CKR_OK)
                    die("C_OpenSession", rv);
                rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin));
                if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
                    die("C_Login", rv);
                setup_keys(s, do_setup); /* this session stays open: the login lasts */
            }
            for (int c = 0; c < nclients; c++)
                run_cell(ops[k], clients[c]);
        }
    }
    if (p11)
        p11->C_Finalize(NULL);
    return 0;
}
