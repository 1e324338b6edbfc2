/*
 * meshless_netns: the only native code of meshless (ARCHITECTURE.md, "Native
 * addon"). Node cannot enter a network namespace, nor read or set SO_MARK,
 * IP_TRANSPARENT, SO_ORIGINAL_DST or a lasting SO_LINGER, so this addon
 * exports these functions:
 *
 *   openSocket(spec)        creates a TCP socket inside a netns (by path),
 *                           sets its options (SO_MARK, IP_TRANSPARENT,
 *                           SO_REUSEADDR/SO_REUSEPORT, SO_RCVBUF(FORCE),
 *                           SO_LINGER 0, TCP_NODELAY: a listener's
 *                           accepted sockets inherit the last three),
 *                           binds it (and listens, for listeners), and
 *                           returns the fd; JavaScript adopts it with `net`.
 *   openSockets(spec, n)    the same for n unbound sockets with one setns()
 *                           there and back (a pod's reserve of sockets);
 *   bindSocket(fd, ip, port) binds one of them (bind() and connect() use
 *                           the socket's netns, not the thread's);
 *   originalDst(fd)         reads SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST of
 *                           an accepted (REDIRECTed) socket.
 *   setLinger(fd, seconds)  sets SO_LINGER (seconds >= 0) or clears it
 *                           (< 0); with 0, closing the socket (or the
 *                           process dying) sends RST instead of FIN.
 *   writeNetSysctl(netnsPath, key, value)
 *                           writes /proc/sys/net/<key> as the given netns
 *                           sees it (e.g. ipv4/tcp_migrate_req); the file is
 *                           opened after setns(), since /proc/sys/net
 *                           resolves the opening thread's namespace.
 *
 * Invariants:
 *  - Nothing here blocks: sockets are non-blocking, and we never connect()
 *    or accept(); libuv does that once Node owns the fd.
 *  - A socket keeps the netns it was created in. We enter the target netns
 *    with setns() in the calling thread only, and always go back to the
 *    thread's own netns before returning. If going back fails, the process
 *    aborts (see restore_home_netns()).
 *  - Every fd opened here is either returned to JavaScript or closed, on
 *    every path.
 *  - Failures throw a JS Error with `code` (errno name, e.g. "EADDRINUSE"),
 *    `errno` (negative, like libuv) and `syscall`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>;
 * defined here because those uapi headers clash with <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Per-environment (per JS thread) state: the netns this thread lives in,
 * opened once when the addon is loaded in that thread, kept open so we can
 * always setns() back without touching the file system. */
typedef struct {
  int home_netns_fd; /* -1 if /proc/thread-self/ns/net could not be opened */
  int home_netns_errno;
} addon_state;

/* What openSocket() builds. Filled from the JS spec object. */
typedef struct {
  char netns_path[PATH_MAX]; /* empty: the calling thread's own netns */
  int family;                /* AF_INET or AF_INET6 */
  struct sockaddr_storage bind_addr;
  socklen_t bind_len; /* 0: do not bind */
  int has_mark;
  uint32_t mark;
  int transparent; /* IP_TRANSPARENT / IPV6_TRANSPARENT */
  int reuse_addr;
  int reuse_port;
  int v6_only; /* -1: leave the kernel default */
  int listen;  /* 1: listen(backlog) after bind */
  int backlog;
  int rcvbuf; /* SO_RCVBUF(FORCE) bytes before bind/connect; 0: the kernel's autotuning */
  int linger_zero; /* SO_LINGER {1, 0}: close() resets; a listener's accepted sockets inherit it */
  int no_delay;    /* TCP_NODELAY; a listener's accepted sockets inherit it */
} socket_spec;

/* A failed syscall: its name and errno. */
typedef struct {
  const char *syscall;
  int err;
} sys_failure;

/* ---- JS errors --------------------------------------------------------- */

/* Throws `Error("<syscall> <CODE>: <strerror>")` with code/errno/syscall set,
 * shaped like Node's own system errors. Returns NULL for `return throw_...`. */
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  const char *name = strerrorname_np(err);
  char code[32];
  char msg[256];
  napi_value js_code, js_msg, js_err, js_errno, js_syscall;

  snprintf(code, sizeof code, "%s", name != NULL ? name : "EUNKNOWN");
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, code, strerror(err));
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok ||
      napi_create_error(env, js_code, js_msg, &js_err) != napi_ok) {
    napi_throw_error(env, code, msg); /* best effort */
    return NULL;
  }
  if (napi_create_int32(env, -err, &js_errno) == napi_ok)
    napi_set_named_property(env, js_err, "errno", js_errno);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &js_syscall) == napi_ok)
    napi_set_named_property(env, js_err, "syscall", js_syscall);
  napi_throw(env, js_err);
  return NULL;
}

/* Throws a TypeError for a bad argument. The TS wrapper validates first, so
 * this only guards against misuse of the raw binding. */
static napi_value throw_arg(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", what);
  return NULL;
}

/* ---- reading the spec object ------------------------------------------- */

/* Reads obj[name]. Returns 0 and sets *type (napi_undefined if absent),
 * or -1 if N-API failed (an exception may be pending). */
static int get_prop(napi_env env, napi_value obj, const char *name, napi_value *val,
                    napi_valuetype *type) {
  if (napi_get_named_property(env, obj, name, val) != napi_ok) return -1;
  if (napi_typeof(env, *val, type) != napi_ok) return -1;
  return 0;
}

/* Optional boolean; absent/undefined means `dflt`. -1 on a wrong type. */
static int opt_bool(napi_env env, napi_value obj, const char *name, int dflt, int *out) {
  napi_value v;
  napi_valuetype t;
  bool b;
  if (get_prop(env, obj, name, &v, &t) != 0) return -1;
  if (t == napi_undefined) {
    *out = dflt;
    return 0;
  }
  if (t != napi_boolean || napi_get_value_bool(env, v, &b) != napi_ok) return -1;
  *out = b ? 1 : 0;
  return 0;
}

/* Optional integer in [min, max]; sets *present. -1 on a wrong type/range. */
static int opt_int(napi_env env, napi_value obj, const char *name, int64_t min, int64_t max,
                   int *present, int64_t *out) {
  napi_value v;
  napi_valuetype t;
  double d;
  *present = 0;
  if (get_prop(env, obj, name, &v, &t) != 0) return -1;
  if (t == napi_undefined) return 0;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return -1;
  /* Range first: NaN fails it, and only then is the cast defined. */
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) return -1;
  *out = (int64_t)d;
  *present = 1;
  return 0;
}

/* Optional string into buf; absent/undefined gives "". -1 on a wrong type
 * or if it does not fit (or holds a NUL byte, which a path cannot). */
static int opt_string(napi_env env, napi_value obj, const char *name, char *buf, size_t size) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  buf[0] = '\0';
  if (get_prop(env, obj, name, &v, &t) != 0) return -1;
  if (t == napi_undefined) return 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len + 1 > size) return -1;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  if (strlen(buf) != len) return -1;
  return 0;
}

/* Fills spec from the JS object:
 *   { netnsPath?: string, family: 4|6, address?: string, port?: number,
 *     mark?: number, transparent?, reuseAddr?, reusePort?, v6Only?: boolean,
 *     listen?: boolean, backlog?: number, receiveBufferBytes?: number }
 * Binds when `address` or `port` is given, or for a listener. Returns NULL
 * on success, else a message for a TypeError. */
static const char *parse_spec(napi_env env, napi_value obj, socket_spec *spec) {
  char address[INET6_ADDRSTRLEN];
  int present, port_present, addr_present;
  int64_t n, port = 0;
  int v6_only_set;

  memset(spec, 0, sizeof *spec);
  if (opt_string(env, obj, "netnsPath", spec->netns_path, sizeof spec->netns_path) != 0)
    return "netnsPath must be a path string";
  if (opt_int(env, obj, "family", 4, 6, &present, &n) != 0 || !present || (n != 4 && n != 6))
    return "family must be 4 or 6";
  spec->family = n == 4 ? AF_INET : AF_INET6;
  if (opt_string(env, obj, "address", address, sizeof address) != 0)
    return "address must be an IP address string";
  addr_present = address[0] != '\0';
  if (opt_int(env, obj, "port", 0, 65535, &port_present, &port) != 0)
    return "port must be an integer in [0, 65535]";
  if (opt_int(env, obj, "mark", 0, UINT32_MAX, &spec->has_mark, &n) != 0)
    return "mark must be an integer in [0, 2^32-1]";
  spec->mark = (uint32_t)n;
  if (opt_bool(env, obj, "transparent", 0, &spec->transparent) != 0 ||
      opt_bool(env, obj, "reuseAddr", 0, &spec->reuse_addr) != 0 ||
      opt_bool(env, obj, "reusePort", 0, &spec->reuse_port) != 0 ||
      opt_bool(env, obj, "listen", 0, &spec->listen) != 0 ||
      opt_bool(env, obj, "lingerZero", 0, &spec->linger_zero) != 0 ||
      opt_bool(env, obj, "noDelay", 0, &spec->no_delay) != 0)
    return "transparent, reuseAddr, reusePort, listen, lingerZero and noDelay must be booleans";
  if (opt_bool(env, obj, "v6Only", -1, &v6_only_set) != 0) return "v6Only must be a boolean";
  spec->v6_only = v6_only_set;
  if (opt_int(env, obj, "backlog", 0, INT32_MAX, &present, &n) != 0)
    return "backlog must be a non-negative integer";
  spec->backlog = present ? (int)n : 511; /* Node's default */
  if (opt_int(env, obj, "receiveBufferBytes", 1, INT32_MAX / 2, &present, &n) != 0)
    return "receiveBufferBytes must be an integer in [1, 2^30-1]";
  spec->rcvbuf = present ? (int)n : 0;

  if (addr_present || port_present || spec->listen) {
    if (spec->family == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&spec->bind_addr;
      sin->sin_family = AF_INET;
      sin->sin_port = htons((uint16_t)port);
      if (addr_present && inet_pton(AF_INET, address, &sin->sin_addr) != 1)
        return "address must be an IPv4 address for family 4";
      spec->bind_len = sizeof *sin;
    } else {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&spec->bind_addr;
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons((uint16_t)port);
      if (addr_present && inet_pton(AF_INET6, address, &sin6->sin6_addr) != 1)
        return "address must be an IPv6 address for family 6";
      spec->bind_len = sizeof *sin6;
    }
  }
  return NULL;
}

/* ---- the socket itself -------------------------------------------------- */

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* SO_LINGER {1, seconds}: with 0, close() (or the process dying) sends RST. */
static int set_linger(int fd, int seconds) {
  struct linger lg;
  lg.l_onoff = 1;
  lg.l_linger = seconds;
  return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* SO_RCVBUFFORCE (CAP_NET_ADMIN: beyond net.core.rmem_max), else SO_RCVBUF
 * (capped by rmem_max). Set before connect()/listen() it also sizes the TCP
 * window scale, and accepted sockets inherit it from their listener. */
static int set_receive_buffer(int fd, int bytes) {
  if (set_int_opt(fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes) == 0) return 0;
  if (errno != EPERM) return -1;
  return set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}

/* Creates, configures and binds (and maybe listens) the socket in the
 * current netns of this thread. Returns the fd, or -1 with *fail set (and
 * the socket closed). */
static int build_socket(const socket_spec *spec, sys_failure *fail) {
  int fd = socket(spec->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    fail->syscall = "socket";
    fail->err = errno;
    return -1;
  }
  /* Each step names the syscall in the error; SO_MARK and *_TRANSPARENT
   * need CAP_NET_ADMIN (EPERM otherwise). */
  if (spec->has_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &spec->mark, sizeof spec->mark) != 0) {
    fail->syscall = "setsockopt(SO_MARK)";
  } else if (spec->transparent && spec->family == AF_INET &&
             set_int_opt(fd, SOL_IP, IP_TRANSPARENT, 1) != 0) {
    fail->syscall = "setsockopt(IP_TRANSPARENT)";
  } else if (spec->transparent && spec->family == AF_INET6 &&
             set_int_opt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1) != 0) {
    fail->syscall = "setsockopt(IPV6_TRANSPARENT)";
  } else if (spec->reuse_addr && set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0) {
    fail->syscall = "setsockopt(SO_REUSEADDR)";
  } else if (spec->reuse_port && set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) {
    fail->syscall = "setsockopt(SO_REUSEPORT)";
  } else if (spec->linger_zero && set_linger(fd, 0) != 0) {
    fail->syscall = "setsockopt(SO_LINGER)";
  } else if (spec->no_delay && set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1) != 0) {
    fail->syscall = "setsockopt(TCP_NODELAY)";
  } else if (spec->rcvbuf > 0 && set_receive_buffer(fd, spec->rcvbuf) != 0) {
    fail->syscall = "setsockopt(SO_RCVBUF)";
  } else if (spec->family == AF_INET6 && spec->v6_only >= 0 &&
             set_int_opt(fd, SOL_IPV6, IPV6_V6ONLY, spec->v6_only) != 0) {
    fail->syscall = "setsockopt(IPV6_V6ONLY)";
  } else if (spec->bind_len > 0 &&
             bind(fd, (const struct sockaddr *)&spec->bind_addr, spec->bind_len) != 0) {
    fail->syscall = "bind";
  } else if (spec->listen && listen(fd, spec->backlog) != 0) {
    fail->syscall = "listen";
  } else {
    return fd;
  }
  fail->err = errno;
  close(fd); /* errno already saved */
  return -1;
}

/* Goes back to the thread's own netns. A thread left in a pod's netns would
 * make every later socket of this process (the daemon's API, other pods'
 * connections) silently live in that pod's network: a security bug, not a
 * recoverable error. So if this fails, the process aborts. */
static void restore_home_netns(const addon_state *st) {
  if (setns(st->home_netns_fd, CLONE_NEWNET) != 0) {
    fprintf(stderr,
            "meshless_netns: FATAL: setns() back to the home network namespace failed: %s; "
            "aborting rather than running in the wrong namespace\n",
            strerror(errno));
    abort();
  }
}

/* Moves the calling thread into the netns at netns_path. Returns an fd of
 * that netns for leave_netns(), or -1 with *fail set (still at home). */
static int enter_netns(const addon_state *st, const char *netns_path, sys_failure *fail) {
  int target;
  if (st->home_netns_fd < 0) {
    /* Without a way back we must not leave. */
    fail->syscall = "open(/proc/thread-self/ns/net)";
    fail->err = st->home_netns_errno;
    return -1;
  }
  target = open(netns_path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    fail->syscall = "open";
    fail->err = errno;
    return -1;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    /* Still at home: setns() failed, nothing to restore. */
    fail->syscall = "setns";
    fail->err = errno;
    close(target);
    return -1;
  }
  return target;
}

/* Back home from enter_netns() (aborts if that fails). */
static void leave_netns(const addon_state *st, int target) {
  restore_home_netns(st);
  close(target);
}

/* Builds the socket inside spec->netns_path (or here if empty). Returns the
 * fd or -1 with *fail set. The calling thread is back in its home netns on
 * every return. */
static int open_socket_in_netns(const addon_state *st, const socket_spec *spec,
                                sys_failure *fail) {
  int target, fd;

  if (spec->netns_path[0] == '\0') return build_socket(spec, fail);
  target = enter_netns(st, spec->netns_path, fail);
  if (target < 0) return -1;
  fd = build_socket(spec, fail);
  leave_netns(st, target);
  return fd;
}

/* openSocket(spec) -> fd */
static napi_value js_open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_valuetype t;
  addon_state *st;
  socket_spec spec;
  sys_failure fail = {"unknown", EINVAL};
  const char *bad;
  int fd;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_instance_data(env, (void **)&st) != napi_ok || st == NULL)
    return throw_arg(env, "meshless_netns is not initialised");
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object)
    return throw_arg(env, "openSocket(spec): spec must be an object");
  bad = parse_spec(env, argv[0], &spec);
  if (bad != NULL) return throw_arg(env, bad);

  fd = open_socket_in_netns(st, &spec, &fail);
  if (fd < 0) return throw_errno(env, fail.syscall, fail.err);
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    return NULL;
  }
  return result;
}

/* Most sockets openSockets() makes in one call. */
#define MAX_SOCKET_BATCH 256

/* openSockets(spec, count) -> fd[]: `count` unbound sockets built inside
 * spec->netns_path with one setns() there and back, for connections opened
 * later (bindSocket, then connect by libuv): a socket's netns is fixed when
 * it is created, and bind() and connect() use the socket's, not the thread's.
 * All or nothing: on a failure every socket made so far is closed. */
static napi_value js_open_sockets(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result, js_fd;
  napi_valuetype t;
  addon_state *st;
  socket_spec spec;
  sys_failure fail = {"unknown", EINVAL};
  const char *bad;
  int32_t count;
  int fds[MAX_SOCKET_BATCH];
  int target = -1, made = 0, i;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_instance_data(env, (void **)&st) != napi_ok || st == NULL)
    return throw_arg(env, "meshless_netns is not initialised");
  if (argc < 2 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object)
    return throw_arg(env, "openSockets(spec, count): spec must be an object");
  if (napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 1 ||
      count > MAX_SOCKET_BATCH)
    return throw_arg(env, "openSockets(spec, count): count must be an integer in [1, 256]");
  bad = parse_spec(env, argv[0], &spec);
  if (bad != NULL) return throw_arg(env, bad);
  if (spec.bind_len > 0 || spec.listen)
    return throw_arg(env, "openSockets(spec, count): sockets are bound later (bindSocket)");

  if (spec.netns_path[0] != '\0') {
    target = enter_netns(st, spec.netns_path, &fail);
    if (target < 0) return throw_errno(env, fail.syscall, fail.err);
  }
  for (; made < count; made++) {
    fds[made] = build_socket(&spec, &fail);
    if (fds[made] < 0) break;
  }
  if (target >= 0) leave_netns(st, target);
  if (made < count) {
    for (i = 0; i < made; i++) close(fds[i]);
    return throw_errno(env, fail.syscall, fail.err);
  }
  if (napi_create_array_with_length(env, (size_t)count, &result) != napi_ok) goto fail_js;
  for (i = 0; i < count; i++)
    if (napi_create_int32(env, fds[i], &js_fd) != napi_ok ||
        napi_set_element(env, result, (uint32_t)i, js_fd) != napi_ok)
      goto fail_js;
  return result;
fail_js:
  for (i = 0; i < count; i++) close(fds[i]);
  return NULL;
}

/* bindSocket(fd, address, port): bind() an unbound socket (e.g. from
 * openSockets) to an IP literal and port, in the socket's own netns. */
static napi_value js_bind_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, port;
  char address[INET6_ADDRSTRLEN];
  size_t len;
  struct sockaddr_storage addr;
  socklen_t addr_len;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof address, &len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535)
    return throw_arg(env, "bindSocket(fd, address, port): fd, IP literal and port expected");
  memset(&addr, 0, sizeof addr);
  if (strchr(address, ':') == NULL) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &sin->sin_addr) != 1)
      return throw_arg(env, "bindSocket: address must be an IP literal");
    addr_len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, address, &sin6->sin6_addr) != 1)
      return throw_arg(env, "bindSocket: address must be an IP literal");
    addr_len = sizeof *sin6;
  }
  if (bind(fd, (const struct sockaddr *)&addr, addr_len) != 0)
    return throw_errno(env, "bind", errno);
  return NULL;
}

/* ---- /proc/sys/net inside a netns --------------------------------------- */

/* A sysctl key under /proc/sys/net: lower-case words and '/', no "..". */
static int valid_net_sysctl_key(const char *key) {
  size_t i, n = strlen(key);
  if (n == 0 || key[0] == '/' || strstr(key, "..") != NULL) return 0;
  for (i = 0; i < n; i++)
    if (!((key[i] >= 'a' && key[i] <= 'z') || (key[i] >= '0' && key[i] <= '9') ||
          key[i] == '_' || key[i] == '/'))
      return 0;
  return 1;
}

/* A mount of /proc/sys/net: absolute, no "..", no trailing '/'. */
static int valid_sysctl_root(const char *root) {
  size_t n = strlen(root);
  return n > 1 && root[0] == '/' && root[n - 1] != '/' && strstr(root, "..") == NULL;
}

/* Writes value to <root>/<key> (root: /proc/sys/net, or another mount of
 * it) as the netns at netns_path sees it: /proc/sys/net resolves the
 * network namespace of the thread that opens the file, whatever mount it is
 * reached through, so it is opened after setns() (and written before going
 * home). */
static int write_net_sysctl(const addon_state *st, const char *netns_path, const char *root,
                            const char *key, const char *value, sys_failure *fail) {
  char path[PATH_MAX + 192];
  int target = -1, fd, rc = 0;
  size_t len = strlen(value);

  snprintf(path, sizeof path, "%s/%s", root, key);
  if (netns_path[0] != '\0') {
    target = enter_netns(st, netns_path, fail);
    if (target < 0) return -1;
  }
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fail->syscall = "open(/proc/sys/net)";
    fail->err = errno;
    rc = -1;
  } else {
    if (write(fd, value, len) != (ssize_t)len) {
      fail->syscall = "write(/proc/sys/net)";
      fail->err = errno;
      rc = -1;
    }
    close(fd);
  }
  if (target >= 0) leave_netns(st, target);
  return rc;
}

/* writeNetSysctl(netnsPath, key, value[, root]): see write_net_sysctl. An
 * empty netnsPath writes the calling thread's own; root defaults to
 * /proc/sys/net. */
static napi_value js_write_net_sysctl(napi_env env, napi_callback_info info) {
  size_t argc = 4, n;
  napi_value argv[4];
  char netns_path[PATH_MAX], key[128], value[64], root[PATH_MAX] = "/proc/sys/net";
  addon_state *st;
  sys_failure fail = {"unknown", EINVAL};

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_instance_data(env, (void **)&st) != napi_ok || st == NULL)
    return throw_arg(env, "meshless_netns is not initialised");
  if (argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], netns_path, sizeof netns_path, &n) != napi_ok ||
      n >= sizeof netns_path - 1 ||
      napi_get_value_string_utf8(env, argv[1], key, sizeof key, &n) != napi_ok ||
      n >= sizeof key - 1 || !valid_net_sysctl_key(key) ||
      napi_get_value_string_utf8(env, argv[2], value, sizeof value, &n) != napi_ok ||
      n == 0 || n >= sizeof value - 1)
    return throw_arg(env, "writeNetSysctl(netnsPath, key, value): strings expected; key like "
                          "ipv4/tcp_migrate_req");
  if (argc >= 4 &&
      (napi_get_value_string_utf8(env, argv[3], root, sizeof root, &n) != napi_ok ||
       n >= sizeof root - 1 || !valid_sysctl_root(root)))
    return throw_arg(env, "writeNetSysctl: root must be an absolute path without '..'");
  if (write_net_sysctl(st, netns_path, root, key, value, &fail) != 0)
    return throw_errno(env, fail.syscall, fail.err);
  return NULL;
}

/* ---- SO_ORIGINAL_DST ---------------------------------------------------- */

/* originalDst(fd) -> { family: 4|6, address: string, port: number }.
 * The conntrack entry is IPv4 or IPv6 after the connection, not after the
 * socket: an IPv4 connection accepted on a dual-stack IPv6 socket has a
 * v4-mapped local address and needs the IPv4 option. */
static napi_value js_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, js_family, js_address, js_port;
  int32_t fd;
  struct sockaddr_storage local, orig;
  socklen_t len = sizeof local;
  char text[INET6_ADDRSTRLEN];
  int v4;
  uint16_t port;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return throw_arg(env, "originalDst(fd): fd must be a non-negative integer");

  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
    return throw_errno(env, "getsockname", errno);
  if (local.ss_family == AF_INET) {
    v4 = 1;
  } else if (local.ss_family == AF_INET6) {
    v4 = IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr);
  } else {
    return throw_errno(env, "getsockname", EAFNOSUPPORT);
  }

  memset(&orig, 0, sizeof orig);
  if (v4) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&orig;
    len = sizeof *sin;
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, sin, &len) != 0)
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == NULL)
      return throw_errno(env, "inet_ntop", errno);
    port = ntohs(sin->sin_port);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&orig;
    len = sizeof *sin6;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, sin6, &len) != 0)
      return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)", errno);
    if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text) == NULL)
      return throw_errno(env, "inet_ntop", errno);
    port = ntohs(sin6->sin6_port);
  }

  if (napi_create_object(env, &result) != napi_ok ||
      napi_create_int32(env, v4 ? 4 : 6, &js_family) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &js_address) != napi_ok ||
      napi_create_int32(env, port, &js_port) != napi_ok ||
      napi_set_named_property(env, result, "family", js_family) != napi_ok ||
      napi_set_named_property(env, result, "address", js_address) != napi_ok ||
      napi_set_named_property(env, result, "port", js_port) != napi_ok)
    return NULL;
  return result;
}

/* setLinger(fd, seconds): SO_LINGER on (l_linger = seconds) when seconds >= 0,
 * off when seconds < 0. With 0, close() (including the kernel's, when the
 * process dies) aborts the connection with RST instead of a FIN. */
static napi_value js_set_linger(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, seconds;
  struct linger lg;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &seconds) != napi_ok)
    return throw_arg(env, "setLinger(fd, seconds): integers expected");
  lg.l_onoff = seconds >= 0;
  lg.l_linger = seconds >= 0 ? seconds : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
    return throw_errno(env, "setsockopt(SO_LINGER)", errno);
  return NULL;
}

/* ---- module ------------------------------------------------------------- */

static void finalize_state(napi_env env, void *data, void *hint) {
  addon_state *st = data;
  (void)env;
  (void)hint;
  if (st->home_netns_fd >= 0) close(st->home_netns_fd);
  free(st);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openSocket", NULL, js_open_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openSockets", NULL, js_open_sockets, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindSocket", NULL, js_bind_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"originalDst", NULL, js_original_dst, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setLinger", NULL, js_set_linger, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeNetSysctl", NULL, js_write_net_sysctl, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  addon_state *st = malloc(sizeof *st);
  if (st == NULL) {
    napi_throw_error(env, "ENOMEM", "meshless_netns: out of memory");
    return NULL;
  }
  /* Loaded (and so initialised) in the thread that will call us: remember
   * where home is, once. */
  st->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  st->home_netns_errno = st->home_netns_fd < 0 ? errno : 0;
  if (napi_set_instance_data(env, st, finalize_state, NULL) != napi_ok) {
    finalize_state(env, st, NULL);
    return NULL;
  }
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
