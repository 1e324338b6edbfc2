/**
 * Loads `meshless_netns.node`, the small C addon built by node-gyp at
 * `npm install` (native/netns.c), and gives its raw functions one typed
 * interface. Only socket-in-netns.ts should use it.
 *
 * The addon is looked for, in order:
 *  1. beside this module's file: `dist/meshless_netns.node` next to the
 *     bundled daemon (scripts/build.mjs copies it there);
 *  2. `<repo>/build/Release/meshless_netns.node`, from the bundle in `dist/`
 *     or from the sources in `src/netns/` (tests, tsx).
 * Never from the working directory: the daemon runs as root.
 * Loading is lazy: importing this module has no side effect.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MeshlessError } from '../errors.js';
import { callerModuleFile } from '../module-file.js';

/** What the addon's `openSocket` builds. Mirrors `socket_spec` in netns.c. */
export interface RawSocketSpec {
  /** Netns file (e.g. `/var/run/netns/x`); empty or absent: the calling thread's own. */
  readonly netnsPath?: string;
  readonly family: 4 | 6;
  /** IP literal to bind; with `port`, the socket is bound (always for listeners). */
  readonly address?: string;
  readonly port?: number;
  /** `SO_MARK`; absent: not set. Needs CAP_NET_ADMIN. */
  readonly mark?: number;
  /** `IP_TRANSPARENT` / `IPV6_TRANSPARENT`. Needs CAP_NET_ADMIN. */
  readonly transparent?: boolean;
  readonly reuseAddr?: boolean;
  readonly reusePort?: boolean;
  /** `IPV6_V6ONLY`; absent: the kernel default. IPv6 only. */
  readonly v6Only?: boolean;
  /** `listen(backlog)` after bind. */
  readonly listen?: boolean;
  readonly backlog?: number;
  /** `SO_RCVBUFFORCE` (else `SO_RCVBUF`) before bind/connect; absent: autotuned. */
  readonly receiveBufferBytes?: number;
  /** `SO_LINGER` {on, 0}: close() resets. A listener's accepted sockets inherit it. */
  readonly lingerZero?: boolean;
  /** `TCP_NODELAY`. A listener's accepted sockets inherit it. */
  readonly noDelay?: boolean;
}

/** A connection's destination before netfilter NAT (REDIRECT) rewrote it. */
export interface OriginalDestination {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

/**
 * The addon's functions. Both are synchronous and never block. Failures
 * throw an Error with `code` (errno name), `errno` and `syscall`, like
 * Node's system errors; a malformed argument throws a TypeError.
 */
export interface NetnsBinding {
  /**
   * Creates a non-blocking, close-on-exec TCP socket inside `spec.netnsPath`,
   * sets its options, binds it (and listens), and returns its fd. The
   * calling thread is back in its own netns when this returns.
   */
  openSocket(spec: RawSocketSpec): number;
  /**
   * `count` (1-256) unbound sockets like {@link openSocket}'s, made with one
   * setns() there and back; all or none. `spec` may not bind or listen.
   */
  openSockets(spec: RawSocketSpec, count: number): number[];
  /** bind() an unbound socket to an IP literal and port, in the socket's own netns. */
  bindSocket(fd: number, address: string, port: number): void;
  /** `SO_ORIGINAL_DST` (or `IP6T_SO_ORIGINAL_DST`) of a connected socket. */
  originalDst(fd: number): OriginalDestination;
  /** `SO_LINGER`: on with `seconds` when >= 0, off when negative. */
  setLinger(fd: number, seconds: number): void;
  /** Writes `/proc/sys/net/<key>` as the netns at `netnsPath` sees it ('' = the caller's). */
  writeNetSysctl(netnsPath: string, key: string, value: string, root?: string): void;
}

const ADDON = 'meshless_netns.node';

let loaded: NetnsBinding | undefined;

/** The places the addon may be, best first, for this module at `moduleFile`. */
export function addonCandidates(moduleFile: string): string[] {
  const dir = dirname(moduleFile);
  return [
    join(dir, ADDON), // dist/, beside the bundle
    join(dir, '..', 'build', 'Release', ADDON), // from dist/
    join(dir, '..', '..', 'build', 'Release', ADDON), // from src/netns/
  ];
}

/**
 * The addon, loaded on first use.
 * @throws MeshlessError `MESHLESS_E_NETNS` when it is not built or cannot load.
 */
export function netnsBinding(): NetnsBinding {
  if (loaded !== undefined) return loaded;
  const moduleFile = callerModuleFile();
  if (moduleFile === undefined)
    throw new MeshlessError('MESHLESS_E_NETNS', 'cannot tell where the running module is');
  const candidates = addonCandidates(moduleFile);
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined)
    throw new MeshlessError(
      'MESHLESS_E_NETNS',
      `native addon ${ADDON} not found (looked in ${candidates.join(', ')}); ` +
        'run `npm install` (it builds the addon with node-gyp) and `npm run build`',
    );
  try {
    loaded = createRequire(path)(path) as NetnsBinding;
  } catch (cause) {
    throw new MeshlessError('MESHLESS_E_NETNS', `cannot load native addon ${path}`, {
      cause,
      details: { path },
    });
  }
  return loaded;
}
