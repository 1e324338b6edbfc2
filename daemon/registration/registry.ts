/**
 * The pods the CNI plugin registered on this node, keyed by container ID,
 * persisted in `<stateDir>/registrations.json` after every change so a
 * restarted daemon re-attaches them. Writes are serialized and coalesced.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, errorMessage, isErrno } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { Address } from '../../src/registration/protocol.js';
import { writeFileAtomic } from '../../src/state/atomic-file.js';

export interface Registration {
  readonly containerId: string;
  readonly ifname: string;
  readonly netns: string;
  readonly network: string;
  readonly namespace: string;
  readonly podName: string;
  readonly podUid: string | undefined;
  readonly addresses: readonly Address[];
  readonly enrolled: boolean;
  readonly reason: string;
  /** The workload's service account, when discovery knew the pod. */
  readonly serviceAccount: string | undefined;
  readonly registeredAt: string;
}

const STATE_VERSION = 1;

export class Registry {
  readonly #file: string;
  readonly #log: Logger;
  readonly #byContainer = new Map<string, Registration>();
  #writing: Promise<void> = Promise.resolve();
  /**
   * While another daemon owns the file (an upgrade in progress), changes stay
   * in memory: the owner's view is the one on disk, reloaded on take-over.
   */
  readOnly = false;
  #dirty = false;

  constructor(stateDir: string, log: Logger) {
    this.#file = join(stateDir, 'registrations.json');
    this.#log = log;
  }

  /**
   * Loads the persisted registrations, keeping those whose netns still
   * exists. Returns the ones dropped (their pods are gone).
   */
  async load(netnsExists: (path: string) => boolean = existsSync): Promise<Registration[]> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw new MeshlessError(
        'MESHLESS_E_STATE',
        `cannot read ${this.#file}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    let doc: { version?: unknown; registrations?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (err) {
      throw new MeshlessError(
        'MESHLESS_E_STATE',
        `${this.#file} is corrupt: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (doc.version !== STATE_VERSION || !Array.isArray(doc.registrations))
      throw new MeshlessError(
        'MESHLESS_E_STATE',
        `${this.#file} has unknown format version ${String(doc.version)}`,
      );
    const dropped: Registration[] = [];
    for (const r of doc.registrations as Registration[]) {
      if (typeof r?.containerId !== 'string' || typeof r.netns !== 'string') continue;
      if (netnsExists(r.netns)) this.#byContainer.set(r.containerId, r);
      else dropped.push(r);
    }
    // Awaited: a failed write must fail load(), not surface later as an unhandled rejection.
    if (dropped.length > 0) await this.#persist();
    return dropped;
  }

  /**
   * Forgets what is in memory and loads the file again (after another
   * daemon, during an upgrade, kept it up to date).
   */
  async reload(netnsExists: (path: string) => boolean = existsSync): Promise<Registration[]> {
    await this.flush().catch(() => undefined);
    this.#byContainer.clear();
    this.readOnly = false;
    return this.load(netnsExists);
  }

  get(containerId: string): Registration | undefined {
    return this.#byContainer.get(containerId);
  }

  all(): Registration[] {
    return [...this.#byContainer.values()];
  }

  get size(): number {
    return this.#byContainer.size;
  }

  /** Adds or replaces; resolves once persisted. */
  async put(r: Registration): Promise<void> {
    this.#byContainer.set(r.containerId, r);
    await this.#persist();
  }

  /** Removes; resolves once persisted. Returns the removed entry, if any. */
  async remove(containerId: string): Promise<Registration | undefined> {
    const r = this.#byContainer.get(containerId);
    if (r === undefined) return undefined;
    this.#byContainer.delete(containerId);
    await this.#persist();
    return r;
  }

  /** Resolves when every change so far is on disk. */
  flush(): Promise<void> {
    return this.#writing;
  }

  #persist(): Promise<void> {
    if (this.readOnly) return Promise.resolve();
    if (this.#dirty) return this.#writing;
    this.#dirty = true;
    this.#writing = this.#writing
      .catch(() => undefined)
      .then(async () => {
        this.#dirty = false;
        const body = JSON.stringify({ version: STATE_VERSION, registrations: this.all() }, null, 1);
        try {
          await writeFileAtomic(this.#file, body + '\n', 0o600);
        } catch (err) {
          this.#log.error(
            { error: errorMessage(err), file: this.#file },
            'persisting registrations failed',
          );
          throw err;
        }
      });
    return this.#writing;
  }
}
