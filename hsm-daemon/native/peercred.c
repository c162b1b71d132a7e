/*
 * peerCred(fd) -> { pid, uid, gid } from the kernel (SO_PEERCRED).
 *
 * The daemon decides which application a connection may join, and the audit log
 * records who called, from these values; a client's own claims are never trusted.
 * Node exposes no API for SO_PEERCRED on a Unix socket, hence this addon.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

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

static napi_value init(napi_env env, napi_value exports)
{
    napi_value fn;
    if (napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn) != napi_ok)
        return NULL;
    if (napi_set_named_property(env, exports, "peerCred", fn) != napi_ok)
        return NULL;
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
