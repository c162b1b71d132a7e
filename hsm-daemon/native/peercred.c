/*
 * peerCred(fd) -> { pid, uid, gid } from the kernel (SO_PEERCRED).
 *
 * The daemon decides which application a connection may join, and the audit log
 * records who called, from these values; a client's own claims are never trusted.
 * Node exposes no API for SO_PEERCRED on a Unix socket, hence this addon.
 *
 * sdNotify(socketPath, message) -> bytes sent: one datagram to systemd's $NOTIFY_SOCKET
 * (sd_notify(3) protocol: "READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."). Node has no
 * AF_UNIX datagram sockets; shelling out to systemd-notify races (systemd attributes the
 * message by the sender's pid, which has already exited). A path starting with '@' is in the
 * abstract namespace. Used by hsm-daemon/src/reload/sdnotify.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define NAPI_VERSION 8
#include <node_api.h>

static napi_value throw_msg(napi_env env, const char *msg)
{
    napi_throw_error(env, NULL, msg);
    return NULL;
}

static int set_int(napi_env env, napi_value obj, const char *name, int64_t v)
{
    napi_value num;
    if (napi_create_int64(env, v, &num) != napi_ok)
        return -1;
    return napi_set_named_property(env, obj, name, num) == napi_ok ? 0 : -1;
}

static napi_value peer_cred(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    napi_valuetype type;
    int32_t fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    napi_value result;
    char msg[160];

    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
        return throw_msg(env, "peerCred: cannot read arguments");
    if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number)
        return throw_msg(env, "peerCred: expected a file descriptor number");
    if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
        return throw_msg(env, "peerCred: invalid file descriptor");

    memset(&cred, 0, sizeof(cred));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        snprintf(msg, sizeof(msg), "peerCred: getsockopt(SO_PEERCRED) on fd %d failed: %s", (int)fd,
                 strerror(errno));
        return throw_msg(env, msg);
    }
    if (len != sizeof(cred))
        return throw_msg(env, "peerCred: kernel returned a short ucred");
    /* pid 0 means the peer is not a process we can identify (e.g. not a Unix socket peer). */
    if (cred.pid <= 0)
        return throw_msg(env, "peerCred: no peer process for this socket");

    if (napi_create_object(env, &result) != napi_ok)
        return throw_msg(env, "peerCred: out of memory");
    if (set_int(env, result, "pid", cred.pid) != 0 || set_int(env, result, "uid", cred.uid) != 0 ||
        set_int(env, result, "gid", cred.gid) != 0)
        return throw_msg(env, "peerCred: cannot build result");
    return result;
}

static napi_value sd_notify_fn(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    char msg[4096];
    size_t plen = 0, mlen = 0;
    struct sockaddr_un sa;
    socklen_t salen;
    napi_value result;
    char err[200];

    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
        return throw_msg(env, "sdNotify: expected (socketPath, message)");
    if (napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &plen) != napi_ok ||
        napi_get_value_string_utf8(env, argv[1], msg, sizeof(msg), &mlen) != napi_ok)
        return throw_msg(env, "sdNotify: arguments must be strings");
    if (plen < 2 || plen >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return throw_msg(env, "sdNotify: socket path must be absolute or start with @ and fit sun_path");
    if (mlen == 0 || mlen >= sizeof(msg) - 1)
        return throw_msg(env, "sdNotify: message empty or too long");

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, sizeof(err), "sdNotify: socket: %s", strerror(errno));
        return throw_msg(env, err);
    }
    ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, sizeof(err), "sdNotify: sendto %s: %s", path, strerror(saved));
        return throw_msg(env, err);
    }
    if (napi_create_int64(env, n, &result) != napi_ok)
        return throw_msg(env, "sdNotify: cannot build result");
    return result;
}

static napi_value init(napi_env env, napi_value exports)
{
    napi_value fn;
    if (napi_create_function(env, "sdNotify", NAPI_AUTO_LENGTH, sd_notify_fn, NULL, &fn) != napi_ok)
        return NULL;
    if (napi_set_named_property(env, exports, "sdNotify", fn) != napi_ok)
        return NULL;
    if (napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn) != napi_ok)
        return NULL;
    if (napi_set_named_property(env, exports, "peerCred", fn) != napi_ok)
        return NULL;
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
