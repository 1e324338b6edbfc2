/**
 * The Kubernetes discovery source: informers on all v1 Namespaces, Pods,
 * Nodes and Services, discovery.k8s.io/v1 EndpointSlices and
 * networking.k8s.io/v1 ServiceCIDRs (optional: older servers lack them) of
 * the cluster (a node daemon resolves destinations by IP cluster-wide, so it
 * needs every node's pods, the Services' addresses and their backends, and
 * the nodes' pod CIDRs), and the policies: networking.k8s.io/v1
 * NetworkPolicies and security.meshless.dev/v1alpha1 AuthorizationPolicies
 * and PeerAuthentications (optional: a cluster without meshless's CRDs
 * answers 404, which counts as none), yielding the same workload model as
 * the file source.
 *
 * What @kubernetes/client-node 1.4's informer (`ListWatch`, what
 * `makeInformer` returns) does, and we keep:
 * - list, then watch from the List's resourceVersion; track the
 *   resourceVersion of every event, BOOKMARK included;
 * - on a 410 Gone (an ERROR event with code 410, or HTTP 410 on the watch)
 *   forget the resourceVersion and relist; the relist diffs the cache and
 *   reports objects that vanished meanwhile as deletions;
 * - when a watch ends cleanly, reconnect at once from the last resourceVersion.
 *
 * What it does not do, and we add here:
 * - any other failure (API down, 5xx, reset connection, failed list) makes
 *   it emit `error` and stop for good: we restart it with exponential
 *   backoff and jitter (200 ms doubling to 30 s, reset on success), from the
 *   last resourceVersion when it has one, else with a fresh list;
 * - a watch that ends at once without an event, or after a non-410 ERROR
 *   event, would be reconnected in a tight loop: we count it as a failure;
 * - `stop()` during a list or before a watch's response still let it open
 *   the watch afterwards: our watch refuses to connect once closed, and
 *   every request is abortable (see kube-api-transport.ts);
 * - no resync: every `resyncMs` (jittered) we relist through the library's
 *   own 410 path, asking for a list not older than what we have seen (the
 *   API server serves it from its watch cache), so a missed event cannot
 *   live forever;
 * - `allowWatchBookmarks` and a server-side `timeoutSeconds` (5-10 min, as
 *   client-go does) on every watch, and an idle timeout on the socket;
 * - its cache keeps whole objects: we hand it only our model (a Pod becomes
 *   a PodInfo plus name/namespace/resourceVersion), so memory is what the
 *   model needs; MODIFIED events that do not change the model only advance
 *   the resourceVersion; malformed objects are logged and skipped;
 * - sync and change notification: `start()` resolves once both initial
 *   lists are in; `onChange` gets one new immutable snapshot per burst of
 *   events: the events one event-loop turn delivers (a watch chunk, a
 *   relist) by default, or those within `debounceMs`. A snapshot rebuilds
 *   only the maps of the kinds that changed; the others, and every
 *   unchanged model, are the previous snapshot's objects, so consumers tell
 *   what changed by identity.
 *
 * Credentials: `discovery.kubernetes.kubeconfig` when set, else the pod's
 * service account (in-cluster). We do not use `loadFromDefault`: it would
 * try $KUBECONFIG and ~/.kube/config before the service account and fall
 * back to http://localhost:8080, so a daemon could silently run with an
 * administrator's credentials or talk to nothing. See
 * {@link kubeconfigSourceOf}.
 *
 * The client library is imported lazily in `start()`, so nothing pays for
 * it unless this source is configured.
 */
import { existsSync } from 'node:fs';
import type * as k8sTypes from '@kubernetes/client-node';
import type {
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { MeshlessError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import {
  authorizationPolicyFromObject,
  type AuthorizationPolicy,
} from '../policy/authorization-policy.js';
import { networkPolicyFromObject, type NetworkPolicy } from '../policy/network-policy.js';
import {
  peerAuthenticationFromObject,
  type PeerAuthentication,
} from '../policy/peer-authentication.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import {
  EMPTY_SNAPSHOT,
  snapshotCounts,
  namespaceFromObject,
  objectKey,
  podFromObject,
  sameModel,
  type ClusterSnapshot,
  type NamespaceInfo,
  type PodInfo,
} from './cluster-state.js';
import {
  endpointSliceFromObject,
  nodeFromObject,
  serviceCidrFromObject,
  serviceFromObject,
  type EndpointSliceInfo,
  type NodeInfo,
  type ServiceCidrInfo,
  type ServiceInfo,
} from './service-model.js';
import type { DiscoverySource } from './discovery-source.js';
import {
  KubeApiTransport,
  kubeApiError,
  type KubeApiError,
  type Query,
  type WatchHandle,
} from './kube-api-transport.js';

/** Where the service account's token lives in a pod. */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Tuning of {@link KubernetesDiscoverySource}; the defaults suit the daemon. */
export interface KubernetesSourceOptions {
  /** Path of a kubeconfig; undefined: the pod's service account (in-cluster). */
  readonly kubeconfig?: string | undefined;
  readonly log?: Logger;
  /** Reconnect backoff; default 200 ms doubling to 30 s. */
  readonly backoff?: BackoffOptions;
  /**
   * Events within this window make one snapshot; default 0: the events of
   * one event-loop turn (a new pod is seen by the next decision that needs it).
   */
  readonly debounceMs?: number;
  /** Items per list page; default 500. */
  readonly pageSize?: number;
  /** Period of the full relist (±10 %); 0 disables it; default 30 min. */
  readonly resyncMs?: number;
  /** Server-side watch timeout range, seconds; default [300, 600]. */
  readonly watchTimeoutSeconds?: readonly [number, number];
  /** Random source of the jitters (tests make it deterministic). */
  readonly random?: () => number;
}

/** How the source authenticates: a decision made from config and environment. */
export type KubeconfigSource =
  { readonly kind: 'file'; readonly path: string } | { readonly kind: 'in-cluster' };

function kubeconfigError(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_DISCOVERY_KUBECONFIG', message, { cause });
}

/**
 * The kubeconfig file when configured; else in-cluster credentials, which
 * need KUBERNETES_SERVICE_HOST/PORT (set by the kubelet in every pod) and
 * the service account token. Anything else is a configuration error, not
 * a silent fallback (see the file header).
 */
export function kubeconfigSourceOf(
  path: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
  fileExists: (p: string) => boolean = existsSync,
): KubeconfigSource {
  if (path !== undefined) return { kind: 'file', path };
  if (!env['KUBERNETES_SERVICE_HOST'] || !env['KUBERNETES_SERVICE_PORT'])
    throw kubeconfigError(
      'no kubeconfig configured and not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset): ' +
        'set discovery.kubernetes.kubeconfig (MESHLESS_DISCOVERY_KUBERNETES_KUBECONFIG)',
    );
  if (!fileExists(SERVICE_ACCOUNT_TOKEN))
    throw kubeconfigError(
      `in-cluster credentials: ${SERVICE_ACCOUNT_TOKEN} is missing; ` +
        'is automountServiceAccountToken disabled for the daemon?',
    );
  return { kind: 'in-cluster' };
}

type ClientModule = typeof k8sTypes;

function loadKubeConfig(k8s: ClientModule, path: string | undefined): KubeConfig {
  const source = kubeconfigSourceOf(path);
  const kc = new k8s.KubeConfig();
  try {
    if (source.kind === 'file') kc.loadFromFile(source.path);
    else kc.loadFromCluster();
  } catch (err) {
    throw kubeconfigError(
      `cannot load ${source.kind === 'file' ? `kubeconfig ${source.path}` : 'in-cluster credentials'}: ${errorMessage(err)}`,
      err,
    );
  }
  if (!kc.getCurrentCluster())
    throw kubeconfigError(
      `kubeconfig ${path ?? '(in-cluster)'}: no current context with a cluster`,
    );
  return kc;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function resourceVersionOf(obj: unknown): string | undefined {
  if (!isRecord(obj) || !isRecord(obj['metadata'])) return undefined;
  const rv = obj['metadata']['resourceVersion'];
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}

/** What the library's cache holds per object: our model, keyed as it expects. */
interface Cached<M> extends KubernetesObject {
  readonly metadata: { name: string; namespace?: string; resourceVersion: string };
  readonly model: M;
}

/** A watch ends "at once" below this: without an event it counts as a failure. */
const MIN_WATCH_MS = 1000;

interface ResourceInformerOptions<M> {
  readonly k8s: ClientModule;
  readonly kc: KubeConfig;
  readonly transport: KubeApiTransport;
  /** e.g. `/api/v1/pods`. */
  readonly path: string;
  readonly kind: string;
  readonly parse: (obj: unknown) => M;
  readonly keyOf: (model: M) => { name: string; namespace?: string };
  readonly log: Logger;
  readonly backoff: BackoffOptions;
  readonly pageSize: number;
  readonly watchTimeoutSeconds: readonly [number, number];
  readonly random: () => number;
  /** The cache changed (add, update or delete of a model). */
  readonly onChange: (informer: object) => void;
  /**
   * A resource older API servers do not serve (ServiceCIDR before
   * Kubernetes 1.33), or a CRD not installed (meshless's
   * AuthorizationPolicy and PeerAuthentication): a 404 on its list counts as "none" and syncs, logged
   * once, instead of blocking start-up; it is asked again at each resync.
   */
  readonly optional?: boolean;
}

/**
 * One resource (namespaces or pods): the library's ListWatch fed by our
 * list function and our Watch, restarted with backoff when it gives up.
 */
class ResourceInformer<M> {
  readonly #o: ResourceInformerOptions<M>;
  readonly #lw: ListWatch<Cached<M>>;
  readonly #backoff: Backoff;
  readonly #abort = new AbortController();
  readonly #synced: Promise<void>;
  #markSynced: () => void = () => undefined;
  #retry: NodeJS.Timeout | undefined;
  /** The running watch and how to end it as if the server had said 410. */
  #current: { handle: WatchHandle; relist(): void } | undefined;
  /** Set by resync(): the next list may be served from the watch cache, not older than this. */
  #resyncFrom: string | undefined;
  /** An optional resource the API server does not serve (404): no watch until the next resync. */
  #absent = false;
  #closed = false;

  constructor(o: ResourceInformerOptions<M>) {
    this.#o = o;
    this.#backoff = new Backoff(o.backoff, o.random);
    this.#synced = new Promise((resolve) => (this.#markSynced = resolve));
    // Structurally a Watch: the library only calls watch() and reads nothing else.
    const watch: Watch = { config: o.kc, watch: this.#watch.bind(this) };
    this.#lw = new o.k8s.ListWatch<Cached<M>>(o.path, watch, () => this.#list(), false);
    this.#lw.on('change', () => o.onChange(this));
    this.#lw.on('connect', () => o.log.debug({}, 'listing or watching'));
    this.#lw.on('error', (err: unknown) => this.#onError(err));
  }

  /** Resolves once the first list has been applied to the cache. */
  get synced(): Promise<void> {
    return this.#synced;
  }

  start(): void {
    this.#lw.start().catch((err: unknown) => this.#onError(err));
  }

  /** The models in the cache. */
  models(): M[] {
    return this.#lw.list().map((c) => c.model);
  }

  /** Ends the running watch through the library's 410 path: it relists. */
  resync(): void {
    if (this.#absent) {
      // An optional resource the server did not serve: ask again (it may have been upgraded).
      this.start();
      return;
    }
    if (this.#current === undefined) return; // listing or backing off: a list is coming anyway
    const rv = this.#lw.latestResourceVersion();
    this.#resyncFrom = rv === '' ? undefined : rv;
    this.#o.log.debug({ resourceVersion: rv }, 'resync: relisting');
    this.#current.relist();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#abort.abort();
    this.#current?.handle.abort();
    this.#current = undefined;
    void this.#lw.stop();
  }

  #onError(err: unknown): void {
    if (this.#closed) return;
    const delay = this.#backoff.next();
    this.#o.log.warn(
      { error: errorMessage(err), failures: this.#backoff.failures, retryInMs: delay },
      `${this.#o.kind} list/watch failed; retrying`,
    );
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.start();
    }, delay);
  }

  #cached(model: M, resourceVersion: string): Cached<M> {
    const { name, namespace } = this.#o.keyOf(model);
    return {
      metadata:
        namespace === undefined ? { name, resourceVersion } : { name, namespace, resourceVersion },
      model,
    };
  }

  /** The library's list function: every page, parsed into models. */
  async #list(): Promise<KubernetesListObject<Cached<M>>> {
    const resyncFrom = this.#resyncFrom;
    this.#resyncFrom = undefined;
    const items: Cached<M>[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    let pages = 0;
    do {
      // A resync list "not older than" what we saw is served from the API server's
      // watch cache (which ignores paging); any other list is a consistent, paged read.
      const query: Query =
        resyncFrom !== undefined
          ? { resourceVersion: resyncFrom, resourceVersionMatch: 'NotOlderThan' }
          : { limit: this.#o.pageSize, continue: cont };
      let page: unknown;
      try {
        page = await this.#o.transport.getJson(this.#o.path, query, this.#abort.signal);
      } catch (err) {
        if (this.#o.optional === true && (err as { statusCode?: unknown }).statusCode === 404) {
          if (!this.#absent)
            this.#o.log.info(
              { path: this.#o.path },
              `the API server does not serve ${this.#o.kind}; taking none`,
            );
          this.#absent = true;
          this.#backoff.reset();
          return { metadata: { resourceVersion: '' }, items: [] };
        }
        throw err;
      }
      this.#absent = false;
      pages += 1;
      if (!isRecord(page) || !Array.isArray(page['items']) || !isRecord(page['metadata']))
        throw kubeApiError(`GET ${this.#o.path}`, 200, 'the answer is not a List');
      for (const item of page['items']) {
        const rv = resourceVersionOf(item) ?? '';
        try {
          items.push(this.#cached(this.#o.parse(item), rv));
        } catch (err) {
          this.#o.log.warn({ error: errorMessage(err) }, `skipping malformed ${this.#o.kind}`);
        }
      }
      const meta = page['metadata'];
      resourceVersion = typeof meta['resourceVersion'] === 'string' ? meta['resourceVersion'] : '';
      cont =
        typeof meta['continue'] === 'string' && meta['continue'] !== ''
          ? meta['continue']
          : undefined;
    } while (cont !== undefined && resyncFrom === undefined);
    this.#backoff.reset();
    this.#o.log.debug({ items: items.length, pages, resourceVersion }, `${this.#o.kind} listed`);
    return { metadata: { resourceVersion }, items };
  }

  /** The library's Watch.watch(): called right after each list is applied, and on reconnects. */
  async #watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    // The library goes on to watch even when stopped during the list: refuse.
    if (this.#closed) return controller;
    this.#markSynced();
    // Nothing to watch on a server without the resource; resync() asks again.
    if (this.#absent) return controller;
    const [lo, hi] = this.#o.watchTimeoutSeconds;
    const timeoutSeconds = Math.round(lo + this.#o.random() * (hi - lo));
    const started = Date.now();
    let dataEvents = 0;
    let errorCode: number | undefined;
    const finish = (err: unknown): void => {
      if (this.#current?.handle === handle) this.#current = undefined;
      if (!this.#closed) done(err);
    };
    const handle = this.#o.transport.watch(
      path,
      { ...query, allowWatchBookmarks: true, timeoutSeconds },
      {
        onEvent: (event) => {
          const r = this.#onEvent(event, callback);
          if (r === 'data') dataEvents += 1;
          else if (typeof r === 'number') errorCode = r;
        },
        onEnd: (err: KubeApiError | undefined) => {
          if (err === undefined && errorCode !== undefined && errorCode !== 410)
            err = kubeApiError(`watch ${path}`, errorCode, 'the API server sent an ERROR event');
          else if (
            err === undefined &&
            errorCode === undefined &&
            dataEvents === 0 &&
            Date.now() - started < MIN_WATCH_MS
          )
            err = kubeApiError(
              `watch ${path}`,
              undefined,
              'the API server closed the watch at once',
            );
          finish(err ?? null);
        },
      },
      timeoutSeconds * 1000 + 30_000,
    );
    this.#current = {
      handle,
      relist: () => {
        handle.abort();
        finish(kubeApiError(`watch ${path}`, 410, 'resync'));
      },
    };
    controller.signal.addEventListener('abort', () => handle.abort(), { once: true });
    return controller;
  }

  /**
   * Checks one watch event and hands the library what it needs. Returns
   * 'data' for an object or bookmark, the code of an ERROR event, else undefined.
   */
  #onEvent(
    event: unknown,
    callback: (phase: string, obj: unknown) => void,
  ): 'data' | number | undefined {
    const { log, kind } = this.#o;
    if (!isRecord(event) || typeof event['type'] !== 'string') {
      log.warn({}, `ignoring a ${kind} watch event without a type`);
      return undefined;
    }
    const type = event['type'];
    const object = event['object'];
    const rv = resourceVersionOf(object);
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        let model: M;
        try {
          if (rv === undefined) throw new Error('no metadata.resourceVersion');
          model = this.#o.parse(object);
        } catch (err) {
          log.warn({ error: errorMessage(err), event: type }, `skipping malformed ${kind}`);
          // Still move past it, so a reconnect does not replay it.
          if (rv !== undefined) callback('BOOKMARK', { metadata: { resourceVersion: rv } });
          return 'data';
        }
        this.#backoff.reset();
        if (type === 'MODIFIED') {
          const { name, namespace } = this.#o.keyOf(model);
          const old = this.#lw.get(name, namespace);
          if (old !== undefined && sameModel(old.model, model)) {
            callback('BOOKMARK', { metadata: { resourceVersion: rv } });
            return 'data';
          }
        }
        callback(type, this.#cached(model, rv));
        return 'data';
      }
      case 'BOOKMARK':
        if (rv !== undefined) callback('BOOKMARK', { metadata: { resourceVersion: rv } });
        return 'data';
      case 'ERROR': {
        const code = isRecord(object) && typeof object['code'] === 'number' ? object['code'] : 0;
        const message =
          isRecord(object) && typeof object['message'] === 'string' ? object['message'] : '';
        log.info(
          { code, message },
          `${kind} watch ERROR event${code === 410 ? ': relisting' : ''}`,
        );
        callback('ERROR', { code });
        return code;
      }
      default:
        log.warn({ event: type }, `ignoring a ${kind} watch event of unknown type`);
        return undefined;
    }
  }
}

/** One informer per resource the snapshot is built from. */
interface Informers {
  readonly namespaces: ResourceInformer<NamespaceInfo>;
  readonly pods: ResourceInformer<PodInfo>;
  readonly nodes: ResourceInformer<NodeInfo>;
  readonly services: ResourceInformer<ServiceInfo>;
  readonly endpointSlices: ResourceInformer<EndpointSliceInfo>;
  readonly serviceCidrs: ResourceInformer<ServiceCidrInfo>;
  readonly networkPolicies: ResourceInformer<NetworkPolicy>;
  readonly authorizationPolicies: ResourceInformer<AuthorizationPolicy>;
  readonly peerAuthentications: ResourceInformer<PeerAuthentication>;
}

/**
 * Discovery from the Kubernetes API: informers on all Namespaces, Pods,
 * Nodes, Services, EndpointSlices and the policies. See the file header for what it adds
 * to the client library.
 */
export class KubernetesDiscoverySource implements DiscoverySource {
  readonly #o: Required<Omit<KubernetesSourceOptions, 'kubeconfig'>> & {
    kubeconfig: string | undefined;
  };
  readonly #log: Logger;
  readonly #listeners: ((s: ClusterSnapshot) => void)[] = [];
  #snapshot: ClusterSnapshot = EMPTY_SNAPSHOT;
  #starting: Promise<void> | undefined;
  #informers: Informers | undefined;
  /** The pending snapshot: a timer (debounceMs > 0) or an immediate. */
  #debounce: { readonly cancel: () => void } | undefined;
  /** Informers whose cache changed since the last snapshot. */
  readonly #dirty = new Set<object>();
  #resync: NodeJS.Timeout | undefined;
  #closed = false;
  #onClose: () => void = () => undefined;
  readonly #closedPromise: Promise<never>;
  synced = false;

  constructor(options: KubernetesSourceOptions = {}) {
    this.#o = {
      kubeconfig: options.kubeconfig,
      log: options.log ?? silentLogger,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      debounceMs: options.debounceMs ?? 0,
      pageSize: options.pageSize ?? 500,
      resyncMs: options.resyncMs ?? 30 * 60_000,
      watchTimeoutSeconds: options.watchTimeoutSeconds ?? [300, 600],
      random: options.random ?? Math.random,
    };
    this.#log = this.#o.log.child({ discovery: 'kubernetes' });
    this.#closedPromise = new Promise<never>((_resolve, reject) => {
      this.#onClose = () =>
        reject(
          new MeshlessError('MESHLESS_E_DISCOVERY_CLOSED', 'discovery closed before it synced'),
        );
    });
    this.#closedPromise.catch(() => undefined); // only start() cares
  }

  /**
   * Loads credentials (a bad kubeconfig rejects with
   * MESHLESS_E_DISCOVERY_KUBECONFIG), then lists and watches; resolves once
   * both initial lists are in. An unreachable or failing API server is
   * retried with backoff for as long as it takes; close() makes it reject
   * with MESHLESS_E_DISCOVERY_CLOSED.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const k8s = await import('@kubernetes/client-node');
    const kc = loadKubeConfig(k8s, this.#o.kubeconfig);
    const transport = new KubeApiTransport(kc);
    await transport.check().catch((err: unknown) => {
      throw kubeconfigError(
        `kubeconfig ${this.#o.kubeconfig ?? '(in-cluster)'}: ${errorMessage(err)}`,
        err,
      );
    });
    if (this.#closed) await this.#closedPromise;
    this.#log.info({ server: transport.server }, 'discovery: connecting to the Kubernetes API');
    const common = {
      k8s,
      kc,
      transport,
      backoff: this.#o.backoff,
      pageSize: this.#o.pageSize,
      watchTimeoutSeconds: this.#o.watchTimeoutSeconds,
      random: this.#o.random,
      onChange: (informer: object) => {
        this.#dirty.add(informer);
        this.#schedule();
      },
    };
    const namespaced = (o: {
      namespace: string;
      name: string;
    }): {
      name: string;
      namespace: string;
    } => ({ name: o.name, namespace: o.namespace });
    const informer = <M>(
      path: string,
      kind: string,
      resource: string,
      parse: (obj: unknown) => M,
      keyOf: (m: M) => { name: string; namespace?: string },
      optional = false,
    ): ResourceInformer<M> =>
      new ResourceInformer<M>({
        ...common,
        path,
        kind,
        parse,
        keyOf,
        optional,
        log: this.#log.child({ resource }),
      });
    const informers: Informers = {
      namespaces: informer(
        '/api/v1/namespaces',
        'Namespace',
        'namespaces',
        namespaceFromObject,
        (ns) => ({
          name: ns.name,
        }),
      ),
      pods: informer('/api/v1/pods', 'Pod', 'pods', podFromObject, namespaced),
      nodes: informer('/api/v1/nodes', 'Node', 'nodes', nodeFromObject, (n) => ({ name: n.name })),
      services: informer('/api/v1/services', 'Service', 'services', serviceFromObject, namespaced),
      endpointSlices: informer(
        '/apis/discovery.k8s.io/v1/endpointslices',
        'EndpointSlice',
        'endpointslices',
        endpointSliceFromObject,
        namespaced,
      ),
      serviceCidrs: informer(
        '/apis/networking.k8s.io/v1/servicecidrs',
        'ServiceCIDR',
        'servicecidrs',
        serviceCidrFromObject,
        (c) => ({ name: c.name }),
        true,
      ),
      networkPolicies: informer(
        '/apis/networking.k8s.io/v1/networkpolicies',
        'NetworkPolicy',
        'networkpolicies',
        networkPolicyFromObject,
        namespaced,
      ),
      authorizationPolicies: informer(
        '/apis/security.meshless.dev/v1alpha1/authorizationpolicies',
        'AuthorizationPolicy',
        'authorizationpolicies',
        authorizationPolicyFromObject,
        namespaced,
        true,
      ),
      peerAuthentications: informer(
        '/apis/security.meshless.dev/v1alpha1/peerauthentications',
        'PeerAuthentication',
        'peerauthentications',
        peerAuthenticationFromObject,
        namespaced,
        true,
      ),
    };
    this.#informers = informers;
    const all = Object.values(informers) as ResourceInformer<unknown>[];
    for (const i of all) i.start();
    await Promise.race([Promise.all(all.map((i) => i.synced)), this.#closedPromise]);
    this.#snapshot = this.#build();
    this.synced = true;
    this.#scheduleResync();
    this.#log.info(snapshotCounts(this.#snapshot), 'discovery synced');
  }

  /** A snapshot: the maps of changed kinds rebuilt, the others kept from the last one. */
  #build(): ClusterSnapshot {
    const i = this.#informers;
    if (i === undefined) return EMPTY_SNAPSHOT;
    const prev = this.#snapshot;
    const dirty = this.#dirty;
    const all = prev === EMPTY_SNAPSHOT;
    const byKey = <M extends { namespace: string; name: string }>(
      informer: ResourceInformer<M>,
      before: ReadonlyMap<string, M>,
    ): ReadonlyMap<string, M> =>
      all || dirty.has(informer)
        ? new Map(informer.models().map((m) => [objectKey(m.namespace, m.name), m]))
        : before;
    const byName = <M extends { name: string }>(
      informer: ResourceInformer<M>,
      before: ReadonlyMap<string, M>,
    ): ReadonlyMap<string, M> =>
      all || dirty.has(informer) ? new Map(informer.models().map((m) => [m.name, m])) : before;
    const next: ClusterSnapshot = {
      namespaces: byName(i.namespaces, prev.namespaces),
      pods: byKey(i.pods, prev.pods),
      nodes: byName(i.nodes, prev.nodes),
      services: byKey(i.services, prev.services),
      endpointSlices: byKey(i.endpointSlices, prev.endpointSlices),
      serviceCidrs: byName(i.serviceCidrs, prev.serviceCidrs),
      authorizationPolicies: byKey(i.authorizationPolicies, prev.authorizationPolicies),
      peerAuthentications: byKey(i.peerAuthentications, prev.peerAuthentications),
      networkPolicies: byKey(i.networkPolicies, prev.networkPolicies),
    };
    dirty.clear();
    return next;
  }

  /**
   * Coalesces a burst of cache changes into one snapshot: those of this
   * event-loop turn (debounceMs 0), or of the window. Before sync, start() builds it.
   */
  #schedule(): void {
    if (!this.synced || this.#closed || this.#debounce !== undefined) return;
    const publish = (): void => {
      this.#debounce = undefined;
      if (this.#closed) return;
      this.#snapshot = this.#build();
      for (const l of this.#listeners) {
        try {
          l(this.#snapshot);
        } catch (err) {
          this.#log.error({ error: errorMessage(err) }, 'discovery listener failed');
        }
      }
    };
    if (this.#o.debounceMs > 0) {
      const timer = setTimeout(publish, this.#o.debounceMs);
      this.#debounce = { cancel: () => clearTimeout(timer) };
    } else {
      const immediate = setImmediate(publish);
      this.#debounce = { cancel: () => clearImmediate(immediate) };
    }
  }

  #scheduleResync(): void {
    if (this.#o.resyncMs <= 0 || this.#closed) return;
    const delay = Math.round(this.#o.resyncMs * (0.9 + 0.2 * this.#o.random()));
    this.#resync = setTimeout(() => {
      for (const informer of Object.values(this.#informers ?? {}) as ResourceInformer<unknown>[])
        informer.resync();
      this.#scheduleResync();
    }, delay);
    // A resync alone must not keep the process alive.
    this.#resync.unref();
  }

  snapshot(): ClusterSnapshot {
    return this.#snapshot;
  }

  onChange(listener: (s: ClusterSnapshot) => void): void {
    this.#listeners.push(listener);
  }

  /** Stops every watch, list and timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#debounce?.cancel();
    clearTimeout(this.#resync);
    for (const informer of Object.values(this.#informers ?? {}) as ResourceInformer<unknown>[])
      informer.close();
    this.#onClose();
  }
}
