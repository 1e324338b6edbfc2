/**
 * TCP sockets that live in another network namespace (a pod's), for the
 * proxy: listeners bound inside the pod netns (15001/15006/15008), outbound
 * connections opened from inside it (marked, optionally with a foreign
 * source address), the original destination of a REDIRECTed connection,
 * SO_LINGER for reset-on-death application sockets, and the pod netns's
 * `net.ipv4.tcp_migrate_req` for upgrades.
 *
 * How: the C addon (native/netns.c) enters the netns in the calling thread,
 * builds and binds the socket, comes back, and returns the fd; `net` adopts
 * the fd. A socket keeps the netns it was created in, so libuv's connect()
 * and accept() on it happen there.
 *
 * Invariants:
 *  - Arguments are validated here, before any syscall; the addon is loaded
 *    on first use only.
 *  - Hosts are IP literals: a name would be resolved with the host's
 *    resolver, not the pod's, and the socket's family must be known before
 *    it is created.
 *  - An adopted outbound socket is connected in the same tick it is adopted:
 *    `new net.Socket({ fd })` starts reading at once, and an unconnected
 *    socket that reaches the event loop fails with ENOTCONN.
 *  - Every failure is a MeshlessError `MESHLESS_E_NETNS` naming the netns
 *    and the operation; a system error is its `cause` (so
 *    `isErrno(err.cause, 'ECONNREFUSED')` works) and its errno name is in
 *    `details.errno`.
 */
import { closeSync } from 'node:fs';
import net from 'node:net';
import { MeshlessError, errorMessage } from '../errors.js';
import { netnsBinding, type OriginalDestination } from './native-binding.js';
import type { SocketReserve } from './socket-reserve.js';

export type { OriginalDestination } from './native-binding.js';

/** Options of {@link listenInNetns}. */
export interface ListenInNetnsOptions {
  /** Netns file, e.g. `/var/run/netns/cni-1234`; empty or absent: the current netns. */
  readonly netnsPath?: string;
  /** IP literal to bind; default `0.0.0.0` (family 4) or `::` (family 6). */
  readonly host?: string;
  /** Port to bind, 0 for any. */
  readonly port: number;
  /** 4 or 6; default: the family of `host`, else 4. Must match `host`. */
  readonly family?: 4 | 6;
  /** listen() backlog, at least 1; default 511 like Node. */
  readonly backlog?: number;
  /** `SO_MARK` for the listener (inherited by accepted sockets). */
  readonly mark?: number;
  /** `IP_TRANSPARENT`: accept connections to non-local addresses (TPROXY). */
  readonly transparent?: boolean;
  /** `SO_REUSEPORT`. `SO_REUSEADDR` is always set, as Node does. */
  readonly reusePort?: boolean;
  /** `IPV6_V6ONLY` for IPv6 listeners; default: the kernel's (dual-stack). */
  readonly v6Only?: boolean;
  /**
   * `SO_RCVBUFFORCE` (else `SO_RCVBUF`, capped by net.core.rmem_max) in
   * bytes, set before listen() so accepted sockets inherit it and their window scale fits it; absent: the kernel's autotuning.
   */
  readonly receiveBufferBytes?: number;
  /**
   * Accepted sockets stay writable after the peer's FIN (Node's
   * `allowHalfOpen`); a proxy needs it to carry half-closes. Default false.
   */
  readonly allowHalfOpen?: boolean;
  /**
   * Accepted sockets start with `SO_LINGER` 0 (see {@link abortOnClose}),
   * inherited from the listener: no syscall per connection. Default false.
   */
  readonly abortOnClose?: boolean;
  /** Accepted sockets start with `TCP_NODELAY`, inherited from the listener. Default false. */
  readonly noDelay?: boolean;
}

/** Options of {@link connectFromNetns}. */
export interface ConnectFromNetnsOptions {
  /** Netns file to connect from; empty or absent: the current netns. */
  readonly netnsPath?: string;
  /** Destination IP literal. */
  readonly host: string;
  /** Destination port, 1-65535. */
  readonly port: number;
  /** `SO_MARK` on the socket, e.g. 0x539 so the pod's rules let it through. */
  readonly mark?: number;
  /**
   * `IP_TRANSPARENT`, to bind a `bindAddress` that is not local (the
   * original peer's). Replies need policy routing in that netns (docs/reference/ports-and-marks.md).
   */
  readonly transparent?: boolean;
  /** Source IP literal to bind, same family as `host`. */
  readonly bindAddress?: string;
  /** Source port to bind; default any. */
  readonly bindPort?: number;
  /** `TCP_NODELAY`, set when the socket is made (before connect()). */
  readonly noDelay?: boolean;
  /** `SO_LINGER` 0 from the start (see {@link abortOnClose}); default false. */
  readonly abortOnClose?: boolean;
  /** Connect timeout in ms; default 10 000 (ztunnel's). Rejects with ETIMEDOUT. */
  readonly timeoutMs?: number;
  /** Stay writable after the peer's FIN (Node's `allowHalfOpen`). Default false. */
  readonly allowHalfOpen?: boolean;
  /**
   * `SO_RCVBUFFORCE` (else `SO_RCVBUF`, capped by net.core.rmem_max) in
   * bytes, set before connect() so the window scale fits it; absent: the kernel's autotuning.
   */
  readonly receiveBufferBytes?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_BACKLOG = 511;

/**
 * Binds a TCP listener inside a network namespace and returns a listening
 * `net.Server` (no connection handler yet: add one with `server.on('connection')`).
 * @throws MeshlessError `MESHLESS_E_NETNS` (rejection) on a bad option, a
 *   missing netns (ENOENT), a port in use (EADDRINUSE), missing privileges (EPERM).
 */
export async function listenInNetns(options: ListenInNetnsOptions): Promise<net.Server> {
  const netnsPath = checkNetnsPath(options.netnsPath, 'listenInNetns');
  const hostFamily =
    options.host === undefined ? undefined : checkIp(options.host, 'host', 'listenInNetns');
  if (options.family !== undefined && options.family !== 4 && options.family !== 6)
    throw invalid('listenInNetns', 'family', 'must be 4 or 6');
  if (hostFamily !== undefined && options.family !== undefined && hostFamily !== options.family)
    throw invalid('listenInNetns', 'family', `is ${options.family} but host is IPv${hostFamily}`);
  const family = hostFamily ?? options.family ?? 4;
  const host = options.host ?? (family === 4 ? '0.0.0.0' : '::');
  const port = checkInt(options.port, 'port', 0, 65535, 'listenInNetns');
  const backlog = checkInt(
    options.backlog ?? DEFAULT_BACKLOG,
    'backlog',
    1, // Node's listen() turns 0 into 511
    2 ** 31 - 1,
    'listenInNetns',
  );
  const mark = options.mark === undefined ? undefined : checkMark(options.mark, 'listenInNetns');
  const receiveBufferBytes = checkBufferBytes(options.receiveBufferBytes, 'listenInNetns');
  const what = `listen on ${formatHostPort(host, port)} ${netnsPhrase(netnsPath)}`;

  let fd: number;
  try {
    fd = netnsBinding().openSocket({
      netnsPath,
      family,
      address: host,
      port,
      backlog,
      mark,
      transparent: options.transparent === true,
      reuseAddr: true,
      reusePort: options.reusePort === true,
      v6Only: family === 6 ? options.v6Only : undefined,
      listen: true,
      receiveBufferBytes,
      lingerZero: options.abortOnClose === true,
      noDelay: options.noDelay === true,
    });
  } catch (cause) {
    throw netnsError(what, netnsPath, cause);
  }

  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  return await new Promise<net.Server>((resolve, reject) => {
    const onError = (cause: Error): void => {
      // Node closes the fd if listen() fails. Only if uv_tcp_open() failed
      // (not seen on a fresh TCP fd) would it stay open; closing it here
      // could close a reused fd number, so we do not.
      reject(netnsError(what, netnsPath, cause));
    };
    server.once('error', onError);
    // exclusive: the fd is this process's; never hand it to a cluster primary.
    server.listen({ fd, backlog, exclusive: true }, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/**
 * Opens a TCP connection from inside a network namespace: the socket is
 * created (marked, transparent, bound as asked) in that netns, then
 * connected asynchronously by libuv. Resolves once connected.
 * @throws MeshlessError `MESHLESS_E_NETNS` (rejection) on a bad option, a
 *   socket that cannot be made (ENOENT, EPERM, EADDRNOTAVAIL, EADDRINUSE), or
 *   a failed connect (ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT...).
 */
export async function connectFromNetns(options: ConnectFromNetnsOptions): Promise<net.Socket> {
  const netnsPath = checkNetnsPath(options.netnsPath, 'connectFromNetns');
  const family = checkIp(options.host, 'host', 'connectFromNetns');
  const port = checkInt(options.port, 'port', 1, 65535, 'connectFromNetns');
  const mark = options.mark === undefined ? undefined : checkMark(options.mark, 'connectFromNetns');
  const receiveBufferBytes = checkBufferBytes(options.receiveBufferBytes, 'connectFromNetns');
  if (
    options.bindAddress !== undefined &&
    checkIp(options.bindAddress, 'bindAddress', 'connectFromNetns') !== family
  )
    throw invalid('connectFromNetns', 'bindAddress', `must be IPv${family} like host`);
  const bindPort =
    options.bindPort === undefined
      ? undefined
      : checkInt(options.bindPort, 'bindPort', 0, 65535, 'connectFromNetns');
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw invalid('connectFromNetns', 'timeoutMs', 'must be a positive number of milliseconds');
  const what = `connect to ${formatHostPort(options.host, port)} ${netnsPhrase(netnsPath)}`;

  let fd: number;
  try {
    fd = netnsBinding().openSocket({
      netnsPath,
      family,
      address: options.bindAddress,
      port: bindPort,
      mark,
      transparent: options.transparent === true,
      receiveBufferBytes,
      lingerZero: options.abortOnClose === true,
      noDelay: options.noDelay === true,
    });
  } catch (cause) {
    throw netnsError(what, netnsPath, cause);
  }

  return adoptAndConnect(fd, options, port, what, netnsPath);
}

/** Options of {@link connectFromReserve}. */
export interface ConnectFromReserveOptions {
  /** Destination IP literal, of the reserve's family. */
  readonly host: string;
  readonly port: number;
  /** Source IP literal to bind (a reserve with `transparent` for a foreign one). */
  readonly bindAddress?: string;
  /** Connect timeout in ms; default 10 000. */
  readonly timeoutMs?: number;
  readonly allowHalfOpen?: boolean;
}

/**
 * {@link connectFromNetns} with a socket taken from `reserve` (made ahead in
 * its netns with its options): no setns() on this path.
 * @throws MeshlessError `MESHLESS_E_NETNS` (rejection) as connectFromNetns does.
 */
export async function connectFromReserve(
  reserve: SocketReserve,
  options: ConnectFromReserveOptions,
): Promise<net.Socket> {
  const netnsPath = checkNetnsPath(reserve.spec.netnsPath, 'connectFromReserve');
  const family = checkIp(options.host, 'host', 'connectFromReserve');
  if (family !== reserve.spec.family)
    throw invalid(
      'connectFromReserve',
      'host',
      `must be IPv${reserve.spec.family} like the reserve`,
    );
  const port = checkInt(options.port, 'port', 1, 65535, 'connectFromReserve');
  if (
    options.bindAddress !== undefined &&
    checkIp(options.bindAddress, 'bindAddress', 'connectFromReserve') !== family
  )
    throw invalid('connectFromReserve', 'bindAddress', `must be IPv${family} like host`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw invalid('connectFromReserve', 'timeoutMs', 'must be a positive number of milliseconds');
  const what = `connect to ${formatHostPort(options.host, port)} ${netnsPhrase(netnsPath)}`;
  let fd: number;
  try {
    fd = reserve.take();
  } catch (cause) {
    throw netnsError(what, netnsPath, cause);
  }
  if (options.bindAddress !== undefined)
    try {
      netnsBinding().bindSocket(fd, options.bindAddress, 0);
    } catch (cause) {
      closeSync(fd);
      throw netnsError(what, netnsPath, cause);
    }
  return adoptAndConnect(fd, options, port, what, netnsPath);
}

/**
 * Adopts a fresh, unconnected socket `fd` and connects it to
 * `options.host`:`port` in the same tick (see the invariants above).
 * Resolves once connected; the fd is closed on every failure.
 */
async function adoptAndConnect(
  fd: number,
  options: Pick<ConnectFromNetnsOptions, 'host' | 'allowHalfOpen' | 'timeoutMs'>,
  port: number,
  what: string,
  netnsPath: string | undefined,
): Promise<net.Socket> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let socket: net.Socket;
  try {
    socket = new net.Socket({
      fd,
      readable: true,
      writable: true,
      allowHalfOpen: options.allowHalfOpen ?? false,
    });
  } catch (cause) {
    closeSync(fd); // not adopted: still ours
    throw netnsError(what, netnsPath, cause);
  }
  return await new Promise<net.Socket>((resolve, reject) => {
    const fail = (cause: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(netnsError(what, netnsPath, cause));
    };
    const timer = setTimeout(() => {
      fail(
        Object.assign(new Error(`connect ETIMEDOUT ${formatHostPort(options.host, port)}`), {
          code: 'ETIMEDOUT',
          syscall: 'connect',
        }),
      );
    }, timeoutMs);
    socket.once('error', fail);
    // Same tick as the adoption (see the invariants above).
    socket.connect(port, options.host, () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

/**
 * The destination a connection had before an iptables REDIRECT (the
 * outbound capture): `SO_ORIGINAL_DST`, or `IP6T_SO_ORIGINAL_DST` for IPv6.
 * An IPv4 connection on a dual-stack listener reports family 4.
 * @throws MeshlessError `MESHLESS_E_NETNS` when the socket has no fd (closed)
 *   or no NAT entry (ENOENT: the connection was not redirected).
 */
export function originalDestination(socket: net.Socket): OriginalDestination {
  const fd = socketFd(socket);
  if (fd === undefined)
    throw new MeshlessError(
      'MESHLESS_E_NETNS',
      'original destination: the socket has no file descriptor (closed, or not a TCP socket)',
    );
  try {
    return netnsBinding().originalDst(fd);
  } catch (cause) {
    throw netnsError(`read the original destination of fd ${fd}`, undefined, cause);
  }
}

/**
 * Makes the kernel abort `socket` with RST when it is closed without a
 * graceful end, including when this process dies (`SO_LINGER` 0): a peer
 * never mistakes a cut connection for a complete one. {@link lingerOff}
 * restores the normal close once the socket's graceful end is under way.
 * Best effort: false when the socket has no fd or the option fails.
 */
export function abortOnClose(socket: net.Socket): boolean {
  return setLinger(socket, 0);
}

/** Undoes {@link abortOnClose}: close() sends a FIN again. Best effort. */
export function lingerOff(socket: net.Socket): boolean {
  return setLinger(socket, -1);
}

function setLinger(socket: net.Socket, seconds: number): boolean {
  const fd = socketFd(socket);
  if (fd === undefined) return false;
  try {
    netnsBinding().setLinger(fd, seconds);
    return true;
  } catch {
    return false;
  }
}

let procSysNet = '/proc/sys/net';

/**
 * Where /proc/sys/net is writable for {@link migrateListenerQueues}: in a
 * container /proc/sys is read-only, so the daemon names a writable mount of
 * the host's (config `procSysNetPath`). Set once at start.
 */
export function setProcSysNetPath(path: string): void {
  procSysNet = path;
}

/**
 * Makes a listener that closes hand its pending connections (SYNs and the
 * accept queue) to another listener of its `SO_REUSEPORT` group in that
 * netns, instead of resetting them: `net.ipv4.tcp_migrate_req = 1` (Linux
 * 5.14+). A daemon leaving during an upgrade then loses no connection the
 * kernel had queued for it.
 * @throws MeshlessError `MESHLESS_E_NETNS` without a netns path, when the
 *   netns is missing, or when the kernel has no such sysctl (ENOENT).
 */
export function migrateListenerQueues(netnsPath: string): void {
  // Never the daemon's own netns: that would change the node's setting.
  const path = checkNetnsPath(netnsPath, 'migrateListenerQueues');
  if (path === undefined)
    throw invalid('migrateListenerQueues', 'netnsPath', "is required (a pod's netns)");
  try {
    netnsBinding().writeNetSysctl(path, 'ipv4/tcp_migrate_req', '1', procSysNet);
  } catch (cause) {
    throw netnsError('set net.ipv4.tcp_migrate_req', path, cause);
  }
}

/**
 * The OS fd under a connected `net.Socket`, or undefined. Node exposes it
 * only on the internal handle (`socket._handle.fd`, Unix), so this is the
 * one place that reaches in.
 */
export function socketFd(socket: net.Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

// ---- validation and errors ----

function invalid(fn: string, field: string, message: string): MeshlessError {
  return new MeshlessError('MESHLESS_E_NETNS', `${fn}: ${field} ${message}`, {
    details: { field },
  });
}

function checkNetnsPath(path: unknown, fn: string): string | undefined {
  if (path === undefined || path === '') return undefined;
  if (typeof path !== 'string' || path.includes('\0') || path.length >= 4096)
    throw invalid(fn, 'netnsPath', 'must be a file path (e.g. /var/run/netns/<name>)');
  return path;
}

/** The IP family of an IP literal; scoped IPv6 (`%eth0`) is not supported. */
function checkIp(value: unknown, field: string, fn: string): 4 | 6 {
  const family = typeof value === 'string' && !value.includes('%') ? net.isIP(value) : 0;
  if (family !== 4 && family !== 6)
    throw invalid(
      fn,
      field,
      `must be an IPv4 or IPv6 address literal (got ${JSON.stringify(value)})`,
    );
  return family;
}

function checkInt(value: unknown, field: string, min: number, max: number, fn: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(fn, field, `must be an integer in [${min}, ${max}] (got ${String(value)})`);
  return value;
}

function checkBufferBytes(value: unknown, fn: string): number | undefined {
  return value === undefined
    ? undefined
    : checkInt(value, 'receiveBufferBytes', 1, 2 ** 30 - 1, fn);
}

function checkMark(value: unknown, fn: string): number {
  return checkInt(value, 'mark', 0, 0xffffffff, fn);
}

function netnsPhrase(netnsPath: string | undefined): string {
  return netnsPath === undefined ? 'in the current netns' : `in netns ${netnsPath}`;
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function netnsError(what: string, netnsPath: string | undefined, cause: unknown): MeshlessError {
  const sys: { code?: unknown; syscall?: unknown } =
    typeof cause === 'object' && cause !== null ? cause : {};
  return new MeshlessError('MESHLESS_E_NETNS', `cannot ${what}: ${errorMessage(cause)}`, {
    cause,
    details: {
      netnsPath,
      errno: typeof sys.code === 'string' ? sys.code : undefined,
      syscall: typeof sys.syscall === 'string' ? sys.syscall : undefined,
    },
  });
}
