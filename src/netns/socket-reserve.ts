/**
 * A reserve of unconnected TCP sockets made ahead inside one network
 * namespace, all with the same options (mark, IP_TRANSPARENT, SO_LINGER 0,
 * TCP_NODELAY): a pod's proxy takes one per connection it opens from inside
 * the pod instead of making it then.
 *
 * Why: making a socket in another netns costs open() of the netns file,
 * setns() there and back, and close() (about 50 us on the test machines),
 * for each connection delivered to an application. The reserve pays that
 * once per {@link SocketReserve.batch} sockets. bind() and connect() need no
 * setns(): they act in the socket's own netns, fixed when it was made.
 *
 * Invariants:
 *  - Every fd in the reserve is unbound, unconnected and owned by it until
 *    {@link SocketReserve.take} hands it out (the taker then owns it).
 *  - {@link SocketReserve.close} closes every fd still held, and a closed
 *    reserve makes no more: a released pod's netns is not kept alive by
 *    sockets nobody will use.
 *  - A failure to make sockets (the netns is gone, no CAP_NET_ADMIN) throws
 *    the addon's system error, and the reserve stays usable.
 */
import { closeSync } from 'node:fs';
import { MeshlessError } from '../errors.js';
import { netnsBinding } from './native-binding.js';

/** The options every socket of a reserve has. */
export interface SocketReserveSpec {
  /** Netns file; empty or absent: the calling thread's own. */
  readonly netnsPath?: string;
  readonly family: 4 | 6;
  /** `SO_MARK`. */
  readonly mark?: number;
  /** `IP_TRANSPARENT`, to bind a non-local source address. */
  readonly transparent?: boolean;
  /** `SO_LINGER` 0: close() resets. */
  readonly abortOnClose?: boolean;
  /** `TCP_NODELAY`. */
  readonly noDelay?: boolean;
}

/** Sockets made per refill; default. */
export const DEFAULT_RESERVE_BATCH = 16;

export class SocketReserve {
  readonly spec: SocketReserveSpec;
  /** Sockets made per refill (1-256). */
  readonly batch: number;
  readonly #idle: number[] = [];
  #closed = false;

  constructor(spec: SocketReserveSpec, batch = DEFAULT_RESERVE_BATCH) {
    if (!Number.isInteger(batch) || batch < 1 || batch > 256)
      throw new MeshlessError(
        'MESHLESS_E_NETNS',
        `socket reserve batch ${batch} is not in [1, 256]`,
      );
    this.spec = spec;
    this.batch = batch;
  }

  /** Sockets held now. */
  get size(): number {
    return this.#idle.length;
  }

  /**
   * An unbound, unconnected socket's fd, now the caller's; refills the
   * reserve with one batch when it is empty.
   * @throws the addon's system error (ENOENT, EPERM...) when sockets cannot be made,
   *   or MESHLESS_E_NETNS after {@link close}.
   */
  take(): number {
    if (this.#closed)
      throw new MeshlessError('MESHLESS_E_NETNS', 'the socket reserve is closed (pod released)');
    if (this.#idle.length === 0) this.#refill();
    const fd = this.#idle.pop();
    if (fd === undefined) throw new MeshlessError('MESHLESS_E_NETNS', 'socket reserve is empty');
    return fd;
  }

  /** Closes every socket held; later {@link take}s throw. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const fd of this.#idle.splice(0)) closeSync(fd);
  }

  #refill(): void {
    const s = this.spec;
    const fds = netnsBinding().openSockets(
      {
        family: s.family,
        ...(s.netnsPath === undefined ? {} : { netnsPath: s.netnsPath }),
        ...(s.mark === undefined ? {} : { mark: s.mark }),
        transparent: s.transparent === true,
        lingerZero: s.abortOnClose === true,
        noDelay: s.noDelay === true,
      },
      this.batch,
    );
    // Taken from the end: the newest first, the same fd numbers reused.
    this.#idle.push(...fds.reverse());
  }
}
