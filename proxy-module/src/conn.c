/*
 * Transport: finding the socket, the connection pool, HELLO, daemon restart
 * detection, and the round trip every stub goes through.
 *
 * One call in flight per connection (docs/protocol.md "Design choices"): a
 * thread borrows a connection for exactly one request/reply, so threads on
 * different sessions run in parallel and no lock is held across socket I/O.
 *
 * Restarts: every connection remembers the "epoch" of the application it
 * belongs to. The epoch changes whenever the module has to start a new
 * application at the daemon (the daemon restarted, or forgot us), and session
 * handles from an older epoch are refused locally (stash.c).
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define MAX_CONNECTIONS 16 /* the daemon allows 64 per application by default */
#define DEFAULT_SOCKET "/run/craton-hsm/craton-hsm.sock"
#define DEFAULT_CLIENT_CONFIG "/etc/craton-hsm/client.conf"
/* How long a reply may take before the call fails with CKR_DEVICE_ERROR (a stopped or
 * wedged daemon must not hang the application forever). Generous: the slowest honest
 * call (RSA-4096 generation on a loaded host, a login behind the lockout delay) takes
 * seconds. CRATON_HSM_TIMEOUT / `timeout =` in the client config; 0 waits forever. */
#define DEFAULT_TIMEOUT_S 300
/* Internal only, never returned to the application: another thread started a
 * new application meanwhile, so join that one instead. */
#define RV_JOIN_INSTEAD (CKR_VENDOR_DEFINED | 0x43524154UL)

struct conn {
  conn *next_all;  /* every open connection, busy or idle: fork and finalize close them all */
  conn *next_idle;
  int fd;
  uint32_t last_request_id;
  uint32_t max_frame;
  uint64_t epoch;
};

static struct {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  unsigned timeout_s; /* per send/recv on a connection; 0 = none */
  mlock lock;       /* guards everything below */
  mlock hello_lock; /* one thread at a time starts a new application */
  sem_t free_slots; /* connections that may still be borrowed or opened */
  conn *all, *idle;
  uint8_t token[APP_TOKEN_LEN];
  uint32_t version; /* protocol version of the current application */
  uint64_t instance;
  uint64_t epoch; /* 0 until the first application exists */
} pool;

/* ---- finding the socket (protocol.md "Finding the socket") ---------------- */

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t') s++;
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
  return s;
}

/* `key = value` from the client config; 1 when found. */
static int value_from_config(const char *file, const char *key, char *out, size_t cap)
{
  FILE *f = fopen(file, "re");
  if (!f) return 0;
  char line[1024];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *s = trim(line);
    if (*s == '#' || *s == '\0') continue;
    char *eq = strchr(s, '=');
    if (!eq) continue;
    *eq = '\0';
    if (strcmp(trim(s), key) != 0) continue;
    char *v = trim(eq + 1);
    if (strlen(v) >= cap) {
      dbg("%s in %s is longer than %zu bytes; shorten it", key, file, cap - 1);
      break;
    }
    strcpy(out, v);
    found = 1;
  }
  fclose(f);
  return found;
}

/* Seconds from a decimal string; -1 when it is not one (or absurdly large). */
static long parse_seconds(const char *v)
{
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end != '\0' || n < 0 || n > 86400 * 365) return -1;
  return n;
}

static void find_timeout(const char *cfg)
{
  pool.timeout_s = DEFAULT_TIMEOUT_S;
  const char *env = getenv("CRATON_HSM_TIMEOUT");
  char buf[32];
  const char *v = env && *env ? env : (value_from_config(cfg, "timeout", buf, sizeof buf) ? buf : NULL);
  if (!v) return;
  long n = parse_seconds(v);
  if (n < 0) {
    dbg("timeout \"%s\" is not a number of seconds; using %d", v, DEFAULT_TIMEOUT_S);
    return;
  }
  pool.timeout_s = (unsigned)n;
}

/* The client settings (protocol.md "Finding the socket", "Reply timeout"): environment,
 * else the client config file, else the defaults. */
static CK_RV find_settings(void)
{
  const char *cfg = getenv("CRATON_HSM_CLIENT_CONFIG");
  cfg = cfg && *cfg ? cfg : DEFAULT_CLIENT_CONFIG;
  find_timeout(cfg);
  const char *env = getenv("CRATON_HSM_SOCKET");
  size_t cap = sizeof pool.path;
  if (env && *env) {
    if (strlen(env) >= cap) {
      dbg("CRATON_HSM_SOCKET is longer than %zu bytes; use a shorter path", cap - 1);
      return CKR_DEVICE_ERROR;
    }
    strcpy(pool.path, env);
    return CKR_OK;
  }
  if (value_from_config(cfg, "socket", pool.path, cap)) return CKR_OK;
  strcpy(pool.path, DEFAULT_SOCKET);
  return CKR_OK;
}

/* ---- frames ------------------------------------------------------------------ */

/* Bytes written before a failure: 0 means the daemon saw nothing of the request. */
static size_t send_all(int fd, const uint8_t *p, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r = send(fd, p + done, n - done, MSG_NOSIGNAL); /* never SIGPIPE the application */
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    done += (size_t)r;
  }
  return done;
}

/* 0 done; -1 closed or failed; -2 no byte within the timeout (SO_RCVTIMEO). */
static int recv_all(int fd, uint8_t *p, size_t n)
{
  while (n) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

enum xfer { XF_OK, XF_UNSENT, XF_BROKEN, XF_TIMEOUT, XF_MALFORMED, XF_TOO_BIG, XF_NOMEM };

/* One request/reply on c. req holds REQ_HEADER_LEN reserved bytes, then the
 * payload. On XF_OK *reply is the whole reply frame (caller frees). */
static enum xfer exchange(conn *c, uint16_t call_id, wbuf *req, uint8_t **reply, size_t *reply_len, CK_RV *rv)
{
  *reply = NULL;
  if (req->oom) return XF_NOMEM;
  if (req->len - 4 > c->max_frame) return XF_TOO_BIG;
  uint32_t id = ++c->last_request_id;
  uint8_t *h = req->p;
  uint32_t len = (uint32_t)(req->len - 4);
  h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
  h[4] = (uint8_t)(id >> 24), h[5] = (uint8_t)(id >> 16), h[6] = (uint8_t)(id >> 8), h[7] = (uint8_t)id;
  h[8] = (uint8_t)(call_id >> 8), h[9] = (uint8_t)call_id, h[10] = 0, h[11] = 0;

  size_t sent = send_all(c->fd, req->p, req->len);
  if (sent == 0) return XF_UNSENT;
  if (sent < req->len) return XF_BROKEN;

  uint8_t lb[4];
  int got = recv_all(c->fd, lb, 4);
  if (got == -2) return XF_TIMEOUT;
  if (got != 0) return XF_BROKEN;
  uint32_t rlen = (uint32_t)lb[0] << 24 | (uint32_t)lb[1] << 16 | (uint32_t)lb[2] << 8 | lb[3];
  if (rlen < REP_HEADER_LEN - 4 || rlen > c->max_frame) {
    dbg("daemon sent a %u-byte frame (limit %u); the daemon and module disagree on protocol v1", rlen,
        c->max_frame);
    return XF_MALFORMED;
  }
  uint8_t *buf = malloc((size_t)rlen + 4);
  if (!buf) return XF_BROKEN; /* the stream is now mid-frame: unusable either way */
  memcpy(buf, lb, 4);
  if ((got = recv_all(c->fd, buf + 4, rlen)) != 0) {
    explicit_bzero(buf, (size_t)rlen + 4);
    free(buf);
    return got == -2 ? XF_TIMEOUT : XF_BROKEN;
  }
  rbuf r;
  rb_init(&r, buf + 4, rlen);
  uint32_t rid = rb_u32(&r);
  uint16_t rcall = rb_u16(&r), rflags = rb_u16(&r);
  uint64_t rrv = rb_u64(&r);
  if (rid != id || rcall != call_id || rflags != 0 || rrv > (uint64_t)(CK_ULONG)-1) {
    dbg("reply does not match request (id %u/%u, call %u/%u, flags %u); connection dropped", rid, id, rcall,
        call_id, rflags);
    explicit_bzero(buf, (size_t)rlen + 4);
    free(buf);
    return XF_MALFORMED;
  }
  *rv = (CK_RV)rrv;
  *reply = buf;
  *reply_len = (size_t)rlen + 4;
  return XF_OK;
}

static void free_reply(uint8_t *p, size_t n)
{
  if (!p) return;
  explicit_bzero(p, n);
  free(p);
}

/* ---- connections and HELLO ---------------------------------------------------- */

static conn *dial(void)
{
  conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  c->max_frame = DEFAULT_MAX_FRAME;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, pool.path, sizeof a.sun_path);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
    dbg("cannot connect to %s: %s; is craton-hsmd running? (set CRATON_HSM_SOCKET to override)", pool.path,
        strerror(errno));
    if (c->fd >= 0) close(c->fd);
    free(c);
    return NULL;
  }
  if (pool.timeout_s) {
    struct timeval tv = {.tv_sec = (time_t)pool.timeout_s, .tv_usec = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return c;
}

static void hang_up(conn *c)
{
  close(c->fd);
  free(c);
}

/* One HELLO in protocol `version` with `token` (NULL: start a new application);
 * *refused = 1 when the daemon answered CKR_DEVICE_ERROR (unsupported version/layout). */
static CK_RV hello_v(conn *c, uint32_t version, const uint8_t *token, uint8_t *token_out, uint64_t *instance,
                     int *refused)
{
  static const uint16_t one = 1;
  wbuf w;
  *refused = 0;
  wb_init(&w);
  wb_raw(&w, "\0\0\0\0\0\0\0\0\0\0\0\0", REQ_HEADER_LEN);
  wb_u32(&w, version);
  wb_u8(&w, (uint8_t)sizeof(CK_ULONG));
  wb_u8(&w, *(const uint8_t *)&one ? 1 : 2);
  wb_bytes(&w, token, token ? APP_TOKEN_LEN : 0);

  uint8_t *reply;
  size_t reply_len;
  CK_RV rv;
  enum xfer x = exchange(c, CALL_HELLO, &w, &reply, &reply_len, &rv);
  wb_free(&w);
  if (x == XF_NOMEM) return CKR_HOST_MEMORY;
  if (x != XF_OK) {
    if (x == XF_TIMEOUT) dbg("%s accepted the connection but did not answer HELLO within %u s", pool.path, pool.timeout_s);
    else if (x != XF_MALFORMED) dbg("%s closed the connection during HELLO; check the daemon's log", pool.path);
    return CKR_DEVICE_ERROR;
  }
  rbuf r;
  rb_init(&r, reply + REP_HEADER_LEN, reply_len - REP_HEADER_LEN);
  if (rv == CKR_OK) {
    uint32_t got = rb_u32(&r);
    size_t n;
    const uint8_t *t = rb_bytes(&r, &n);
    *instance = rb_u64(&r);
    uint32_t max_frame = rb_u32(&r);
    if (!rb_at_end(&r) || n != APP_TOKEN_LEN || got != version || max_frame < 64) {
      dbg("malformed HELLO reply (version %u, token %zu bytes); daemon and module disagree on protocol v%u",
          got, n, version);
      rv = CKR_DEVICE_ERROR;
    } else {
      memcpy(token_out, t, APP_TOKEN_LEN);
      c->max_frame = max_frame;
    }
  } else if (rv != CKR_GENERAL_ERROR) {
    *refused = rv == CKR_DEVICE_ERROR;
    dbg("daemon refused HELLO v%u with CK_RV 0x%lx (0x30: unsupported client, 0x31: connection limit reached)",
        version, (unsigned long)rv);
  }
  free_reply(reply, reply_len);
  return rv;
}

/* HELLO in protocol *version. A new application offers PROTOCOL_VERSION and, when a
 * daemon older than it refuses that, protocol 1 on the same connection; *version is
 * then the one in use. Joins use the application's version. */
static CK_RV hello(conn *c, uint32_t *version, const uint8_t *token, uint8_t *token_out, uint64_t *instance)
{
  int refused;
  CK_RV rv = hello_v(c, *version, token, token_out, instance, &refused);
  if (refused && !token && *version > 1) {
    *version = 1;
    rv = hello_v(c, *version, token, token_out, instance, &refused);
  }
  return rv;
}

/* A connection to a new application; the pool moves to a new epoch. */
static CK_RV start_application(uint64_t seen_epoch, conn **out)
{
  mlock_take(&pool.hello_lock);
  mlock_take(&pool.lock);
  int someone_else_did = pool.epoch != seen_epoch;
  mlock_give(&pool.lock);
  CK_RV rv = CKR_OK;
  if (someone_else_did) {
    rv = RV_JOIN_INSTEAD;
  } else {
    conn *c = dial();
    uint8_t token[APP_TOKEN_LEN];
    uint64_t instance = 0;
    uint32_t version = PROTOCOL_VERSION;
    rv = c ? hello(c, &version, NULL, token, &instance) : CKR_DEVICE_REMOVED;
    if (rv == CKR_OK) {
      mlock_take(&pool.lock);
      if (pool.epoch && instance != pool.instance)
        dbg("daemon restarted (instance %016llx -> %016llx); sessions opened before are invalid",
            (unsigned long long)pool.instance, (unsigned long long)instance);
      else if (pool.epoch)
        dbg("daemon no longer knew this application; sessions opened before are invalid");
      memcpy(pool.token, token, APP_TOKEN_LEN);
      pool.version = version;
      pool.instance = instance;
      c->epoch = ++pool.epoch;
      mlock_give(&pool.lock);
      *out = c;
    } else if (c) {
      hang_up(c);
    }
  }
  mlock_give(&pool.hello_lock);
  return rv;
}

/* A fresh connection joined to the current application (starting one if the
 * daemon no longer knows it). */
static CK_RV open_conn(conn **out)
{
  for (int attempt = 0; attempt < 3; attempt++) {
    mlock_take(&pool.lock);
    uint64_t epoch = pool.epoch;
    uint8_t token[APP_TOKEN_LEN];
    memcpy(token, pool.token, APP_TOKEN_LEN);
    uint32_t version = pool.version;
    mlock_give(&pool.lock);

    CK_RV rv;
    if (epoch == 0) {
      rv = start_application(epoch, out);
    } else {
      conn *c = dial();
      if (!c) return CKR_DEVICE_REMOVED;
      uint8_t got[APP_TOKEN_LEN];
      uint64_t instance;
      rv = hello(c, &version, token, got, &instance);
      explicit_bzero(token, sizeof token);
      if (rv == CKR_OK) {
        c->epoch = epoch;
        *out = c;
        return CKR_OK;
      }
      hang_up(c);
      if (rv != CKR_GENERAL_ERROR) return rv;
      rv = start_application(epoch, out); /* token unknown: daemon restarted or forgot us */
    }
    if (rv != RV_JOIN_INSTEAD) return rv;
  }
  return CKR_DEVICE_ERROR;
}

/* ---- the pool -------------------------------------------------------------------- */

static void unlink_all(conn *c)
{
  for (conn **pp = &pool.all; *pp; pp = &(*pp)->next_all) {
    if (*pp == c) {
      *pp = c->next_all;
      return;
    }
  }
}

static CK_RV borrow(conn **out, int *reused)
{
  while (sem_wait(&pool.free_slots) != 0 && errno == EINTR) {
  }
  mlock_take(&pool.lock);
  conn *c;
  while ((c = pool.idle) != NULL) {
    pool.idle = c->next_idle;
    if (c->epoch == pool.epoch) break;
    unlink_all(c); /* belongs to an application that no longer exists */
    hang_up(c);
  }
  mlock_give(&pool.lock);
  *reused = c != NULL;
  if (!c) {
    CK_RV rv = open_conn(&c);
    if (rv != CKR_OK) {
      sem_post(&pool.free_slots);
      return rv;
    }
    mlock_take(&pool.lock);
    c->next_all = pool.all;
    pool.all = c;
    mlock_give(&pool.lock);
  }
  *out = c;
  return CKR_OK;
}

/* A connection whose stream state is in doubt is never reused. */
static void give_back(conn *c, int broken)
{
  mlock_take(&pool.lock);
  if (broken || c->epoch != pool.epoch) {
    unlink_all(c);
    hang_up(c);
  } else {
    c->next_idle = pool.idle;
    pool.idle = c;
  }
  mlock_give(&pool.lock);
  sem_post(&pool.free_slots);
}

CK_RV pool_start(void)
{
  CK_RV rv = find_settings();
  if (rv != CKR_OK) return rv;
  pool.all = pool.idle = NULL;
  pool.epoch = 0;
  if (sem_init(&pool.free_slots, 0, MAX_CONNECTIONS) != 0) return CKR_HOST_MEMORY;
  if ((rv = mlock_new(&pool.lock)) != CKR_OK) goto fail_sem;
  if ((rv = mlock_new(&pool.hello_lock)) != CKR_OK) goto fail_lock;

  /* The first connection starts the application and stays in the pool. */
  conn *c;
  int reused;
  rv = borrow(&c, &reused);
  if (rv == CKR_OK) {
    give_back(c, 0);
    return CKR_OK;
  }
  if (rv == CKR_DEVICE_REMOVED) rv = CKR_DEVICE_ERROR; /* C_Initialize's code for "unreachable" */
  mlock_free(&pool.hello_lock);
fail_lock:
  mlock_free(&pool.lock);
fail_sem:
  sem_destroy(&pool.free_slots);
  return rv;
}

static void close_all(void)
{
  while (pool.all) {
    conn *c = pool.all;
    pool.all = c->next_all;
    hang_up(c);
  }
  pool.idle = NULL;
  explicit_bzero(pool.token, sizeof pool.token);
}

void pool_stop(void)
{
  /* Tell the daemon on an idle connection; if none is idle, closing the last
   * connection ends the application just the same. */
  mlock_take(&pool.lock);
  conn *c = pool.idle;
  if (c) pool.idle = c->next_idle;
  mlock_give(&pool.lock);
  if (c && c->epoch == pool.epoch) {
    wbuf w;
    wb_init(&w);
    wb_raw(&w, "\0\0\0\0\0\0\0\0\0\0\0\0", REQ_HEADER_LEN);
    uint8_t *reply;
    size_t n;
    CK_RV rv;
    if (exchange(c, CALL_ID(C_Finalize), &w, &reply, &n, &rv) == XF_OK) free_reply(reply, n);
    wb_free(&w);
  }
  close_all();
  mlock_free(&pool.hello_lock);
  mlock_free(&pool.lock);
  sem_destroy(&pool.free_slots);
}

/* In a forked child: the sockets are shared with the parent, so closing our
 * copies is silent; nothing may be written to them. */
void pool_forget(void)
{
  close_all();
  mlock_free(&pool.hello_lock);
  mlock_free(&pool.lock);
  sem_destroy(&pool.free_slots);
}

/* ---- the round trip ------------------------------------------------------------ */

CK_RV call_begin(call *k, uint16_t id)
{
  memset(k, 0, sizeof *k);
  k->id = id;
  CK_RV rv = module_ready();
  if (rv != CKR_OK) return rv;
  wb_init(&k->req);
  wb_raw(&k->req, "\0\0\0\0\0\0\0\0\0\0\0\0", REQ_HEADER_LEN);
  return CKR_OK;
}

CK_RV call_begin_session(call *k, uint16_t id, CK_SESSION_HANDLE h)
{
  CK_RV rv = call_begin(k, id);
  if (rv != CKR_OK) return rv;
  k->has_session = 1;
  k->h = h;
  stash_keep_only(h, id);
  wb_ulong(&k->req, h);
  return CKR_OK;
}

CK_RV call_run(call *k)
{
  for (int attempt = 0;; attempt++) {
    conn *c;
    int reused;
    CK_RV rv = borrow(&c, &reused);
    if (rv != CKR_OK) return rv;
    if (k->has_session && (rv = session_check(k->h, c->epoch)) != CKR_OK) {
      give_back(c, 0);
      return rv;
    }
    CK_RV reply_rv = CKR_OK;
    switch (exchange(c, k->id, &k->req, &k->reply, &k->reply_len, &reply_rv)) {
    case XF_OK:
      k->c = c;
      k->epoch = c->epoch;
      rb_init(&k->out, k->reply + REP_HEADER_LEN, k->reply_len - REP_HEADER_LEN);
      return reply_rv;
    case XF_UNSENT:
      give_back(c, 1);
      if (reused && attempt < MAX_CONNECTIONS) continue; /* an idle connection the daemon had closed */
      dbg("daemon at %s went away; calls fail with CKR_DEVICE_REMOVED until it is back", pool.path);
      return CKR_DEVICE_REMOVED;
    case XF_BROKEN:
      give_back(c, 1);
      dbg("daemon at %s closed the connection mid-call; retry once it is back", pool.path);
      return CKR_DEVICE_REMOVED;
    case XF_TIMEOUT:
      /* The late reply must never be read as another call's answer: drop the connection.
       * Whether the daemon carried the call out is unknown to us. */
      give_back(c, 1);
      dbg("daemon at %s sent no reply within %u s (CRATON_HSM_TIMEOUT); the call's outcome is unknown",
          pool.path, pool.timeout_s);
      return CKR_DEVICE_ERROR;
    case XF_MALFORMED:
      give_back(c, 1);
      return CKR_DEVICE_ERROR;
    case XF_TOO_BIG:
      give_back(c, 0);
      dbg("request of %zu bytes exceeds the daemon's max_frame (%u)", k->req.len - 4, c->max_frame);
      return CKR_DEVICE_MEMORY;
    case XF_NOMEM:
      give_back(c, 0);
      return CKR_HOST_MEMORY;
    }
  }
}

CK_RV call_end(call *k, CK_RV rv)
{
  if (k->c) {
    int bad = !rb_at_end(&k->out);
    if (bad) {
      dbg("malformed reply to call %u (%zu of %zu payload bytes used); connection dropped", k->id, k->out.off,
          k->out.len);
      rv = CKR_DEVICE_ERROR;
    }
    give_back(k->c, bad);
    k->c = NULL;
  }
  free_reply(k->reply, k->reply_len);
  k->reply = NULL;
  wb_free(&k->req);
  return rv;
}

void pool_lock_for_fork(int take)
{
  if (take) mlock_take(&pool.lock);
  else mlock_give(&pool.lock);
}
