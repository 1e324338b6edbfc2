/**
 * The node's workload identity service: one X509-SVID per (namespace,
 * service account) that has a registered workload on this node, renewed on
 * schedule. Two ways to get them:
 * - the cluster signer (config `signer`, the only mode for several nodes):
 *   the daemon makes each workload key itself, sends a CSR attested as its
 *   node, and gets the SVID and the trust bundle back; it holds no key that
 *   can sign certificates;
 * - `unsafeLocalRoot` (one node only): the daemon holds the cluster root and
 *   signs its own intermediate, which issues the leaves.
 *
 * Invariants:
 * - An identity exists only while at least one registered workload (by its
 *   workload key, the pod's container ID) holds it through `acquire`; the
 *   last `release` drops it and its timer. Nothing else creates identities,
 *   so the node never issues an SVID for a pod that is not on it.
 * - Local mode: leaves are issued only by the node CA, never by the root.
 * - Signer mode: a first issuance the signer cannot answer, or refuses as
 *   "no pod of that identity on this node" (its discovery may lag ours), is
 *   retried for `enrolWaitSeconds`, then fails `MESHLESS_E_NOT_READY` (the
 *   plugin answers CNI 11); any other refusal fails at once with the
 *   signer's reason.
 * - The trust bundle is replaced (never merged) by the latest one published:
 *   the signer's answer or the bundle file, whichever changed last.
 * - One `tls.SecureContext` per SVID, built lazily: on its first use, or
 *   ~30 ms after issuance (off the CNI ADD's path), whichever comes first;
 *   renewal swaps in a new SVID with its own. Established connections keep
 *   the context they started with.
 * - A renewal failure never removes the current SVID: it is retried with
 *   backoff until it succeeds or the SVID expires.
 * - Timers are unref'd: they never keep the process alive.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { DaemonConfig, SignerConfig } from '../../src/config/daemon-config.js';
import { MeshlessError, errorMessage, type ErrorCode } from '../../src/errors.js';
import {
  generateRootCa,
  issueNodeCa,
  loadRootCa,
  type SigningAuthority,
} from '../../src/identity/certificate-authority.js';
import {
  isoTime,
  summarizeCertificate,
  type CertsReport,
  type IdentityReport,
} from '../../src/identity/certs-report.js';
import { KubernetesSecretRootSource } from '../../src/identity/kubernetes-root-source.js';
import {
  FileRootSource,
  GeneratedRootStore,
  resolveRoot,
  type RootSource,
} from '../../src/identity/root-source.js';
import {
  retryDelay,
  rotationTime,
  timerDelay,
  type RandomFraction,
} from '../../src/identity/rotation.js';
import { buildSecureContext } from '../../src/identity/secure-context.js';
import {
  toSpiffeId,
  validateTrustDomain,
  workloadSpiffeId,
  type SpiffeId,
} from '../../src/identity/spiffe-id.js';
import { TrustBundle, derToPem } from '../../src/identity/trust-bundle.js';
import { joinBearer, parseJoinCredential } from '../../src/signer/join-credential.js';
import { SignerClient, type NodeCredential } from '../../src/signer/signer-client.js';
import { issueX509Svid, type X509Svid } from '../../src/identity/x509-svid.js';

/** gRPC PERMISSION_DENIED: the signer's node authorizer said no. */
const PERMISSION_DENIED = 7;

/** A pino-compatible logger; only these four methods are used. */
export interface IdentityLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Opaque handle of a scheduled callback. */
export type TimerHandle = unknown;

/** Timers, injectable so tests can drive rotation with a fake clock. */
export interface Scheduler {
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * Longest single wait of a rotation timer. Timers run on a monotonic clock
 * but due times are wall-clock: after a forward wall-clock jump (NTP step,
 * VM resume) a long wait would keep an expired SVID in use until it fired.
 * Waking at least this often re-checks the wall clock and rotates when due.
 */
export const MAX_TIMER_WAIT_MS = 60_000;

/** Node's timers, unref'd. */
export const nodeScheduler: Scheduler = {
  setTimeout(callback, delayMs) {
    const t = setTimeout(callback, delayMs);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** Dependencies of {@link IdentityService.create}; all optional. */
export interface IdentityServiceDeps {
  /** Current time, ms since the epoch. Default Date.now. */
  readonly clock?: () => number;
  /** Uniform [0, 1) for rotation jitter. Default Math.random. */
  readonly random?: RandomFraction;
  readonly logger?: IdentityLogger;
  readonly scheduler?: Scheduler;
  /** Replaces the root sources derived from `config.unsafeLocalRoot` (tests). */
  readonly rootSources?: readonly RootSource[];
}

/** How the signer has been answering (readiness, metrics, /certs). */
export interface SignerStatus {
  readonly address: string;
  /** False after a failed call, until one succeeds. */
  readonly reachable: boolean;
  readonly consecutiveFailures: number;
  readonly lastError: string | undefined;
  readonly lastSuccessAt: string | undefined;
}

/**
 * How long after issuing an SVID its TLS context is built, when no
 * handshake needed it sooner: long enough for the CNI ADD that asked for
 * the SVID to be answered first, far shorter than a pod takes to start.
 */
const SECURE_CONTEXT_WARM_UP_MS = 30;

/** An SVID held by this node, ready for TLS. */
export interface Svid extends X509Svid {
  /**
   * TLS 1.3 context presenting this SVID and trusting the bundle. Reuse it.
   * Built on first read (or ~30 ms after issuance), then always the same.
   */
  readonly secureContext: SecureContext;
  /** When it is due to be renewed, ms since the epoch. */
  readonly rotateAt: number;
}

/** Events of {@link IdentityService}. */
export interface IdentityEvents {
  /** A new identity got its first SVID. */
  issued: (svid: Svid) => void;
  /** An identity's SVID was renewed; `previous` stays valid until it expires. */
  rotated: (svid: Svid, previous: Svid) => void;
  /** The last workload of an identity left; its SVID is dropped. */
  released: (spiffeId: SpiffeId) => void;
  /** A renewal failed; it will be retried at `retryAt`. */
  'rotation-failed': (subject: SpiffeId | 'node-ca', error: unknown, retryAt: number) => void;
  /** The node intermediate CA was renewed. */
  'node-ca-rotated': (nodeCa: SigningAuthority) => void;
  /** A new trust bundle was published (signer answer or bundle file). */
  'trust-bundle-changed': (bundle: TrustBundle) => void;
}

interface Identity {
  readonly id: SpiffeId;
  readonly key: string;
  readonly workloads: Set<string>;
  current: Svid | undefined;
  pending: Promise<Svid> | undefined;
  timer: Timer | undefined;
  failures: number;
}

/** A scheduled callback; `handle` changes when it re-arms. */
interface Timer {
  handle: TimerHandle | undefined;
}

const noop = (): void => {};
const silentLogger: IdentityLogger = { info: noop, warn: noop, error: noop, debug: noop };

function identityError(
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): MeshlessError {
  return new MeshlessError(code, message, { details });
}

/** Root sources named by the unsafe local-root configuration, in order: files, then Secret. */
export function configuredRootSources(config: DaemonConfig): RootSource[] {
  const sources: RootSource[] = [];
  const ca = config.unsafeLocalRoot;
  if (ca === undefined) return sources;
  if (ca.certFile !== undefined && ca.keyFile !== undefined)
    sources.push(new FileRootSource(ca.certFile, ca.keyFile));
  if (ca.secret !== undefined)
    sources.push(
      new KubernetesSecretRootSource(ca.secret, {
        kubeconfig:
          config.discovery.source === 'kubernetes' ? config.discovery.kubeconfig : undefined,
      }),
    );
  return sources;
}

/** See the file comment. Create with {@link IdentityService.create}. */
export class IdentityService {
  /** The trust domain, e.g. `cluster.local`. */
  readonly trustDomain: string;
  readonly nodeName: string;
  #bundle: TrustBundle;
  readonly #root: SigningAuthority | undefined;
  readonly #signer: SignerClient | undefined;
  readonly #signerConfig: SignerConfig | undefined;
  #signerFailures = 0;
  #signerLastError: string | undefined;
  #signerLastSuccess: number | undefined;
  #bundleWatcher: FSWatcher | undefined;
  readonly #svidTtlMs: number;
  readonly #nodeCaTtlMs: number;
  readonly #clock: () => number;
  readonly #random: RandomFraction;
  readonly #log: IdentityLogger;
  readonly #scheduler: Scheduler;
  readonly #events = new EventEmitter();
  /** Identities by SPIFFE ID URI. */
  readonly #identities = new Map<string, Identity>();
  /** Workload key -> SPIFFE ID URI it holds. */
  readonly #workloads = new Map<string, string>();
  #nodeCa: SigningAuthority | undefined;
  #nodeCaRotateAt: number;
  #nodeCaTimer: Timer | undefined;
  #nodeCaFailures = 0;
  #closed = false;

  private constructor(
    config: DaemonConfig,
    root: SigningAuthority | undefined,
    bundle: TrustBundle,
    nodeCa: SigningAuthority | undefined,
    deps: Required<Omit<IdentityServiceDeps, 'rootSources'>>,
  ) {
    this.trustDomain = config.trustDomain;
    this.nodeName = config.nodeName;
    this.#bundle = bundle;
    this.#root = root;
    this.#signerConfig = config.signer;
    this.#signer =
      config.signer === undefined
        ? undefined
        : new SignerClient({
            address: config.signer.address,
            serverName: config.signer.serverName,
            trustBundlePem: () => this.#bundle.pem,
            credential: nodeCredential(config.signer),
            clock: deps.clock,
          });
    this.#svidTtlMs = config.identity.svidTtlSeconds * 1000;
    this.#nodeCaTtlMs = config.identity.intermediateTtlSeconds * 1000;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#log = deps.logger;
    this.#scheduler = deps.scheduler;
    this.#nodeCa = nodeCa;
    this.#nodeCaRotateAt = nodeCa ? this.#scheduleNodeCa(nodeCa) : 0;
    if (config.signer) this.#watchBundleFile(config.signer.trustBundleFile);
  }

  /** The roots peers must chain to; replaced when a new bundle is published. */
  get trustBundle(): TrustBundle {
    return this.#bundle;
  }

  /** How the signer has been answering; undefined in local-root mode. */
  get signerStatus(): SignerStatus | undefined {
    if (!this.#signerConfig) return undefined;
    return {
      address: this.#signerConfig.address,
      reachable: this.#signerFailures === 0,
      consecutiveFailures: this.#signerFailures,
      lastError: this.#signerLastError,
      lastSuccessAt:
        this.#signerLastSuccess === undefined ? undefined : isoTime(this.#signerLastSuccess),
    };
  }

  #setBundle(bundle: TrustBundle, origin: string): void {
    if (bundle.pem === this.#bundle.pem) return;
    this.#bundle = bundle;
    // A new connection to the signer verifies it with the new roots.
    this.#signer?.reset();
    this.#log.info(
      { origin, roots: bundle.roots.map((r) => r.serialNumber.toLowerCase()) },
      'trust bundle changed',
    );
    this.#emit('trust-bundle-changed', bundle);
  }

  /** Watches the bundle file's directory (a ConfigMap swaps a symlink). */
  #watchBundleFile(path: string): void {
    const reload = (): void => {
      readFile(path, 'utf8').then(
        (pem) => {
          if (this.#closed) return;
          try {
            this.#setBundle(TrustBundle.fromPem(this.trustDomain, pem, path), path);
          } catch (err) {
            this.#log.warn(
              { path, err: errorMessage(err) },
              'ignoring an unusable trust bundle file',
            );
          }
        },
        () => undefined,
      );
    };
    try {
      this.#bundleWatcher = watch(dirname(path), { persistent: false }, () => reload());
      this.#bundleWatcher.on('error', () => undefined);
    } catch (err) {
      this.#log.warn({ path, err: errorMessage(err) }, 'cannot watch the trust bundle file');
    }
  }

  /**
   * Loads (or, if allowed, generates) the root, signs this node's
   * intermediate and returns the running service. Throws MeshlessError
   * `MESHLESS_E_CA` when no usable root is found.
   */
  static async create(
    config: DaemonConfig,
    deps: IdentityServiceDeps = {},
  ): Promise<IdentityService> {
    const clock = deps.clock ?? Date.now;
    const log = deps.logger ?? silentLogger;
    const trustDomain = validateTrustDomain(config.trustDomain);
    const rest = {
      clock,
      random: deps.random ?? Math.random,
      logger: log,
      scheduler: deps.scheduler ?? nodeScheduler,
    };
    if (config.signer !== undefined) {
      const path = config.signer.trustBundleFile;
      let pem: string;
      try {
        pem = await readFile(path, 'utf8');
      } catch (err) {
        throw identityError(
          'MESHLESS_E_CA',
          `cannot read the trust bundle ${path}: ${errorMessage(err)}`,
        );
      }
      const bundle = TrustBundle.fromPem(trustDomain, pem, path);
      log.info(
        {
          signer: config.signer.address,
          attestation: config.signer.tokenFile ? 'kubernetes-psat' : 'join-credential',
          bundleRoots: bundle.roots.length,
        },
        'identities come from the cluster signer; this node holds no signing key',
      );
      return new IdentityService(config, undefined, bundle, undefined, rest);
    }
    const store = new GeneratedRootStore(config.stateDir);
    const resolved = await resolveRoot({
      configured: deps.rootSources ?? configuredRootSources(config),
      store,
      generate: config.unsafeLocalRoot?.generate ?? false,
      generateRoot: () => generateRootCa({ trustDomain, now: clock() }),
    });
    const now = clock();
    const { authority: root, bundle } = await loadRootCa(resolved.material, { trustDomain, now });
    const rootInfo = {
      source: resolved.source,
      subject: root.certificate.subject,
      serialNumber: root.certificate.serialNumber.toLowerCase(),
      notAfter: isoTime(root.notAfter),
      bundleRoots: bundle.roots.length,
    };
    if (resolved.generated)
      log.warn(
        { ...rootInfo, certFile: store.certFile, keyFile: store.keyFile },
        'UNSAFE local root (one node only): generated a new cluster root CA; only daemons sharing this state directory will trust each other',
      );
    log.warn(
      rootInfo,
      'UNSAFE local root: this daemon holds the cluster root key; root on this node can forge every identity. Use a cluster signer for more than one node',
    );
    const nodeCaTtlMs = config.identity.intermediateTtlSeconds * 1000;
    if (root.notAfter - now < nodeCaTtlMs)
      log.warn(
        { notAfter: rootInfo.notAfter },
        'the cluster root CA expires within one node CA lifetime; rotate the root',
      );
    const nodeCa = await issueNodeCa(root, { nodeName: config.nodeName, now, ttlMs: nodeCaTtlMs });
    log.info(
      {
        serialNumber: nodeCa.certificate.serialNumber.toLowerCase(),
        notAfter: isoTime(nodeCa.notAfter),
      },
      'issued the node intermediate CA',
    );
    return new IdentityService(config, root, bundle, nodeCa, rest);
  }

  /** Subscribes to an event. */
  on<E extends keyof IdentityEvents>(event: E, listener: IdentityEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Unsubscribes from an event. */
  off<E extends keyof IdentityEvents>(event: E, listener: IdentityEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }

  #emit<E extends keyof IdentityEvents>(event: E, ...args: Parameters<IdentityEvents[E]>): void {
    try {
      this.#events.emit(event, ...args);
    } catch (err) {
      this.#log.error({ event, err: errorMessage(err) }, 'an identity event listener threw');
    }
  }

  /** The current node intermediate CA (local-root mode only). */
  get nodeCa(): SigningAuthority | undefined {
    return this.#nodeCa;
  }

  /**
   * Registers `workloadKey` (a registered pod's container ID) as a user of
   * the identity `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>` and
   * resolves to its SVID, issuing it if this is the first workload with that
   * identity on the node. Idempotent; a workload key that comes back with a
   * different identity is moved to it.
   */
  async acquire(workloadKey: string, namespace: string, serviceAccount: string): Promise<Svid> {
    if (this.#closed)
      throw identityError('MESHLESS_E_IDENTITY_CLOSED', 'the identity service is shut down');
    if (workloadKey === '')
      throw identityError('MESHLESS_E_IDENTITY', 'acquire needs a workload key (container ID)');
    const id = workloadSpiffeId(this.trustDomain, namespace, serviceAccount);
    const key = id.toString();
    const held = this.#workloads.get(workloadKey);
    if (held !== undefined && held !== key) {
      this.#log.info({ workload: workloadKey, from: held, to: key }, 'workload changed identity');
      this.release(workloadKey);
    }
    let identity = this.#identities.get(key);
    if (!identity) {
      identity = {
        id,
        key,
        workloads: new Set(),
        current: undefined,
        pending: undefined,
        timer: undefined,
        failures: 0,
      };
      this.#identities.set(key, identity);
    }
    identity.workloads.add(workloadKey);
    this.#workloads.set(workloadKey, key);
    if (identity.current) return identity.current;
    identity.pending ??= this.#firstIssue(identity);
    return identity.pending;
  }

  async #firstIssue(identity: Identity): Promise<Svid> {
    try {
      const svid = await this.#issueWaiting(identity);
      identity.pending = undefined;
      if (this.#identities.get(identity.key) !== identity || this.#closed) {
        // Every workload left (or we shut down) while it was being issued.
        return svid;
      }
      this.#install(identity, svid);
      this.#log.info(
        {
          spiffeId: identity.key,
          serialNumber: svid.serialNumber,
          notAfter: isoTime(svid.notAfter),
          rotateAt: isoTime(svid.rotateAt),
        },
        'issued workload SVID',
      );
      this.#emit('issued', svid);
      return svid;
    } catch (err) {
      identity.pending = undefined;
      // Roll back: the workloads waiting on this identity all get the error.
      if (this.#identities.get(identity.key) === identity) {
        this.#identities.delete(identity.key);
        for (const w of identity.workloads) {
          if (this.#workloads.get(w) === identity.key) this.#workloads.delete(w);
        }
      }
      this.#log.error(
        { spiffeId: identity.key, err: errorMessage(err) },
        'cannot issue workload SVID',
      );
      throw err;
    }
  }

  /**
   * A first issuance: through the signer, retried with backoff while it is
   * unreachable, for `enrolWaitSeconds` at most; then NOT_READY (CNI 11).
   */
  async #issueWaiting(identity: Identity): Promise<Svid> {
    if (!this.#signerConfig) return this.#issue(identity.id);
    const deadline = this.#clock() + this.#signerConfig.enrolWaitSeconds * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#issue(identity.id);
      } catch (err) {
        // Unreachable, or refused as "no such pod on your node": the signer's
        // discovery may lag behind ours for a pod just scheduled. Both wait,
        // then NOT_READY (CNI 11: the kubelet retries; never unprotected).
        const retryable =
          err instanceof MeshlessError &&
          (err.code === 'MESHLESS_E_SIGNER_UNAVAILABLE' ||
            (err.code === 'MESHLESS_E_SIGNER_REFUSED' &&
              err.details?.['grpcStatus'] === PERMISSION_DENIED));
        const wait = Math.min(2000, 100 * 2 ** attempt);
        if (!retryable || this.#closed || this.#identities.get(identity.key) !== identity)
          throw err;
        if (this.#clock() + wait >= deadline)
          throw new MeshlessError(
            'MESHLESS_E_NOT_READY',
            `the cluster signer did not issue ${identity.key} within ${this.#signerConfig.enrolWaitSeconds} s: ${errorMessage(err)}`,
            { cause: err },
          );
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  async #fromSigner(id: SpiffeId): Promise<X509Svid> {
    const signer = this.#signer as SignerClient;
    try {
      const answer = await signer.issue(id, this.#svidTtlMs);
      this.#signerFailures = 0;
      this.#signerLastError = undefined;
      this.#signerLastSuccess = this.#clock();
      if (answer.trustBundlePem !== undefined)
        this.#setBundle(
          TrustBundle.fromPem(this.trustDomain, answer.trustBundlePem, 'signer answer'),
          'signer answer',
        );
      return answer.svid;
    } catch (err) {
      this.#signerFailures++;
      this.#signerLastError = errorMessage(err);
      this.#log.warn(
        {
          spiffeId: id.toString(),
          signer: this.#signerConfig?.address,
          code: err instanceof MeshlessError ? err.code : undefined,
          err: errorMessage(err),
        },
        err instanceof MeshlessError && err.code === 'MESHLESS_E_SIGNER_REFUSED'
          ? 'the cluster signer refused a workload SVID'
          : 'the cluster signer is unreachable',
      );
      throw err;
    }
  }

  async #issue(id: SpiffeId): Promise<Svid> {
    const now = this.#clock();
    const x = this.#signer
      ? await this.#fromSigner(id)
      : await issueX509Svid(this.#nodeCa as SigningAuthority, id, { now, ttlMs: this.#svidTtlMs });
    const bundle = this.trustBundle;
    let context: SecureContext | undefined;
    const svid: Svid = {
      ...x,
      // Built on first use: createSecureContext costs ~2 ms of CPU, which a
      // pod's ADD would otherwise wait for. Warmed shortly after, off that path.
      get secureContext(): SecureContext {
        return (context ??= buildSecureContext(x, bundle));
      },
      rotateAt: rotationTime(x, this.#random),
    };
    setTimeout(() => {
      try {
        void svid.secureContext;
      } catch (err) {
        this.#log.error(
          { spiffeId: id.toString(), err: errorMessage(err) },
          'cannot build the TLS context of a workload SVID',
        );
      }
    }, SECURE_CONTEXT_WARM_UP_MS).unref();
    return svid;
  }

  #install(identity: Identity, svid: Svid): void {
    identity.current = svid;
    identity.failures = 0;
    this.#arm(identity, svid.rotateAt);
  }

  #arm(identity: Identity, due: number): void {
    this.#cancel(identity.timer);
    identity.timer = this.#at(due, () => void this.#rotate(identity));
  }

  /**
   * Runs `fn` once the clock reaches `due`. Each wait is capped at
   * {@link MAX_TIMER_WAIT_MS}, so a wall-clock jump is noticed within that;
   * a timer that fires before `due` re-arms.
   */
  #at(due: number, fn: () => void): Timer {
    const timer: Timer = { handle: undefined };
    const arm = (): void => {
      timer.handle = this.#scheduler.setTimeout(
        () => {
          if (this.#clock() < due) return arm();
          timer.handle = undefined;
          fn();
        },
        Math.min(MAX_TIMER_WAIT_MS, timerDelay(due, this.#clock())),
      );
    };
    arm();
    return timer;
  }

  #cancel(timer: Timer | undefined): void {
    if (timer?.handle !== undefined) this.#scheduler.clearTimeout(timer.handle);
    if (timer) timer.handle = undefined;
  }

  async #rotate(identity: Identity): Promise<void> {
    if (this.#closed || this.#identities.get(identity.key) !== identity) return;
    const previous = identity.current;
    try {
      const svid = await this.#issue(identity.id);
      if (this.#closed || this.#identities.get(identity.key) !== identity) return;
      this.#install(identity, svid);
      this.#log.info(
        {
          spiffeId: identity.key,
          serialNumber: svid.serialNumber,
          previousSerialNumber: previous?.serialNumber,
          rotateAt: isoTime(svid.rotateAt),
        },
        'rotated workload SVID',
      );
      if (previous) this.#emit('rotated', svid, previous);
    } catch (err) {
      if (this.#closed || this.#identities.get(identity.key) !== identity) return;
      identity.failures++;
      const now = this.#clock();
      const retryAt = now + retryDelay(identity.failures, now, previous?.notAfter ?? now);
      this.#log.error(
        {
          spiffeId: identity.key,
          attempt: identity.failures,
          notAfter: previous ? isoTime(previous.notAfter) : undefined,
          retryAt: isoTime(retryAt),
          err: errorMessage(err),
        },
        'cannot rotate workload SVID; the current one stays in use',
      );
      this.#emit('rotation-failed', identity.id, err, retryAt);
      this.#arm(identity, retryAt);
    }
  }

  #scheduleNodeCa(nodeCa: SigningAuthority): number {
    const rotateAt = rotationTime(
      { issuedAt: this.#clock(), notAfter: nodeCa.notAfter },
      this.#random,
    );
    this.#armNodeCa(rotateAt);
    return rotateAt;
  }

  #armNodeCa(due: number): void {
    this.#cancel(this.#nodeCaTimer);
    this.#nodeCaTimer = this.#at(due, () => void this.#rotateNodeCa());
  }

  async #rotateNodeCa(): Promise<void> {
    if (this.#closed || !this.#root || !this.#nodeCa) return;
    try {
      const now = this.#clock();
      const nodeCa = await issueNodeCa(this.#root, {
        nodeName: this.nodeName,
        now,
        ttlMs: this.#nodeCaTtlMs,
      });
      if (this.#closed) return;
      this.#nodeCa = nodeCa;
      this.#nodeCaFailures = 0;
      this.#nodeCaRotateAt = this.#scheduleNodeCa(nodeCa);
      this.#log.info(
        {
          serialNumber: nodeCa.certificate.serialNumber.toLowerCase(),
          notAfter: isoTime(nodeCa.notAfter),
          rotateAt: isoTime(this.#nodeCaRotateAt),
        },
        'rotated the node intermediate CA',
      );
      this.#emit('node-ca-rotated', nodeCa);
    } catch (err) {
      if (this.#closed) return;
      this.#nodeCaFailures++;
      const now = this.#clock();
      const retryAt = now + retryDelay(this.#nodeCaFailures, now, this.#nodeCa.notAfter);
      this.#nodeCaRotateAt = retryAt;
      this.#log.error(
        { attempt: this.#nodeCaFailures, retryAt: isoTime(retryAt), err: errorMessage(err) },
        'cannot rotate the node intermediate CA; the current one stays in use',
      );
      this.#emit('rotation-failed', 'node-ca', err, retryAt);
      this.#armNodeCa(retryAt);
    }
  }

  /**
   * Unregisters a workload. When it was the last user of its identity, the
   * SVID and its timer are dropped. Returns false for an unknown key
   * (idempotent).
   */
  release(workloadKey: string): boolean {
    const key = this.#workloads.get(workloadKey);
    if (key === undefined) return false;
    this.#workloads.delete(workloadKey);
    const identity = this.#identities.get(key);
    if (!identity) return true;
    identity.workloads.delete(workloadKey);
    if (identity.workloads.size > 0) return true;
    this.#identities.delete(key);
    this.#cancel(identity.timer);
    identity.timer = undefined;
    this.#log.info(
      { spiffeId: key },
      'released workload identity: no workload on this node uses it',
    );
    this.#emit('released', identity.id);
    return true;
  }

  /**
   * The current SVID of an identity held on this node. Throws
   * `MESHLESS_E_IDENTITY_NOT_ON_NODE` for any identity no registered
   * workload on this node holds (node scoping), and `MESHLESS_E_SPIFFE_ID`
   * for a malformed ID.
   */
  svidFor(id: SpiffeId | string): Svid {
    if (this.#closed)
      throw identityError('MESHLESS_E_IDENTITY_CLOSED', 'the identity service is shut down');
    // The hot path (every proxied connection) names the identity by its
    // canonical string: a map hit, no parse.
    const known = typeof id === 'string' ? this.#identities.get(id)?.current : undefined;
    if (known) return known;
    const spiffeId = toSpiffeId(id);
    const identity = this.#identities.get(spiffeId.toString());
    if (!identity?.current) {
      const why = identity
        ? 'its SVID is still being issued'
        : 'no workload registered on this node has that identity; a node only holds the identities of its own pods';
      throw identityError(
        'MESHLESS_E_IDENTITY_NOT_ON_NODE',
        `no SVID for ${spiffeId} on node ${this.nodeName}: ${why}`,
        { spiffeId: spiffeId.toString(), node: this.nodeName },
      );
    }
    return identity.current;
  }

  /** The TLS context of an identity held on this node; see {@link svidFor}. */
  secureContextFor(id: SpiffeId | string): SecureContext {
    return this.svidFor(id).secureContext;
  }

  /** Number of workload keys and identities held (for metrics and tests). */
  get size(): { workloads: number; identities: number } {
    return { workloads: this.#workloads.size, identities: this.#identities.size };
  }

  /** The `GET /certs` document. */
  report(): CertsReport {
    const identities: IdentityReport[] = [];
    for (const identity of this.#identities.values()) {
      const svid = identity.current;
      if (!svid) continue;
      identities.push({
        spiffeId: identity.key,
        workloads: identity.workloads.size,
        serialNumber: svid.serialNumber,
        notBefore: isoTime(svid.notBefore),
        notAfter: isoTime(svid.notAfter),
        nextRotation: isoTime(svid.rotateAt),
        rotationFailures: identity.failures,
        chainPem: svid.chainDer.map(derToPem),
      });
    }
    identities.sort((a, b) => a.spiffeId.localeCompare(b.spiffeId));
    return {
      trustDomain: this.trustDomain,
      nodeName: this.nodeName,
      generatedAt: isoTime(this.#clock()),
      trustBundle: this.trustBundle.roots.map(summarizeCertificate),
      nodeCa: this.#nodeCa
        ? {
            ...summarizeCertificate(this.#nodeCa.certificate),
            nextRotation: isoTime(this.#nodeCaRotateAt),
          }
        : null,
      signer: this.signerStatus ?? null,
      identities,
    };
  }

  /** Stops all timers and drops every SVID. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const identity of this.#identities.values()) this.#cancel(identity.timer);
    this.#cancel(this.#nodeCaTimer);
    this.#signer?.close();
    this.#bundleWatcher?.close();
    this.#identities.clear();
    this.#workloads.clear();
    this.#events.removeAllListeners();
  }
}

/** The per-request credential of the configured attestation method. */
function nodeCredential(signer: SignerConfig): NodeCredential {
  if (signer.tokenFile !== undefined) {
    const path = signer.tokenFile;
    // Re-read every time: the kubelet rotates projected tokens.
    return async () => (await readFile(path, 'utf8')).trim();
  }
  const path = signer.joinCredentialFile as string;
  return async (csr, now) =>
    joinBearer(parseJoinCredential(await readFile(path, 'utf8'), path), csr, now);
}
