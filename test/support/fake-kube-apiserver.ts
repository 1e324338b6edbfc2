/**
 * TEST DOUBLE of the Kubernetes API server, not a real one: an in-process
 * HTTP server on 127.0.0.1:0 that speaks the list/watch protocol of
 * `/api/v1/{namespaces,pods,nodes,services}` and
 * `/apis/discovery.k8s.io/v1/endpointslices`, NetworkPolicies and meshless's
 * AuthorizationPolicies and PeerAuthentications closely enough to exercise an
 * informer, and lets a test break it on purpose.
 *
 * What it implements, as the real server does:
 * - one cluster-wide resourceVersion counter (etcd's revision), bumped by
 *   every write and stamped on the object; Lists carry it in `metadata`;
 * - lists with `limit`/`continue` (pages of a frozen view; a continue token
 *   older than the compaction answers 410 Expired), and
 *   `resourceVersion`+`resourceVersionMatch=NotOlderThan` (the current state);
 * - `?watch=true|1&resourceVersion=N`: the events after N replayed from the
 *   event log, then live ones, as newline-delimited JSON over a chunked
 *   response; `resourceVersion` empty or "0" starts with a synthetic ADDED
 *   per object; `allowWatchBookmarks=true` enables BOOKMARK events;
 *   `timeoutSeconds` ends the stream cleanly;
 * - N older than the compacted revision: HTTP 200 then an ERROR event whose
 *   object is a v1 Status (code 410, reason Expired), then the end;
 * - bearer-token authentication (401 Status otherwise), 404 Status for
 *   any other path.
 *
 * What it lets a test do: write objects (`put`, `update`, `delete`,
 * `putRaw` for malformed ones), send bookmarks, compact the event log, drop
 * every watch connection abruptly (socket destroyed mid-stream), answer
 * 500 to everything for a while (`setDown`), and wait for requests.
 * Not implemented: label/field selectors, namespaced paths, protobuf,
 * other resources.
 */
import { EventEmitter, once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export type Resource =
  | 'namespaces'
  | 'pods'
  | 'nodes'
  | 'services'
  | 'endpointslices'
  | 'networkpolicies'
  | 'authorizationpolicies'
  | 'peerauthentications';

/** Every resource the double serves, and its cluster-wide path. */
export const RESOURCE_PATHS: Readonly<Record<Resource, string>> = {
  namespaces: '/api/v1/namespaces',
  pods: '/api/v1/pods',
  nodes: '/api/v1/nodes',
  services: '/api/v1/services',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  networkpolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  authorizationpolicies: '/apis/security.meshless.dev/v1alpha1/authorizationpolicies',
  peerauthentications: '/apis/security.meshless.dev/v1alpha1/peerauthentications',
};
const RESOURCES = Object.keys(RESOURCE_PATHS) as Resource[];

/** A request as the double saw it. */
export interface RecordedRequest {
  readonly method: string;
  readonly resource: Resource | undefined;
  readonly watch: boolean;
  readonly query: Readonly<Record<string, string>>;
  /** The HTTP status it answered. */
  readonly status: number;
  /** A watch answered with an ERROR event 410 Expired (its resourceVersion was compacted). */
  readonly expired: boolean;
  readonly at: number;
}

/** A token the double accepts in TokenReview (see addToken). */
export interface ReviewedToken {
  readonly username: string;
  readonly audiences: readonly string[];
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

interface LoggedEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
}

interface OpenWatch {
  readonly resource: Resource;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
}

const KIND: Record<Resource, string> = {
  namespaces: 'Namespace',
  pods: 'Pod',
  nodes: 'Node',
  services: 'Service',
  endpointslices: 'EndpointSlice',
  networkpolicies: 'NetworkPolicy',
  authorizationpolicies: 'AuthorizationPolicy',
  peerauthentications: 'PeerAuthentication',
};

function keyOf(resource: Resource, obj: Obj): string {
  const name = String(obj.metadata['name']);
  return resource === 'namespaces' || resource === 'nodes'
    ? name
    : `${String(obj.metadata['namespace'] ?? 'default')}/${name}`;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
}

/** A v1 Namespace object. */
export function namespaceObject(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

/** A v1 Pod object with the fields meshless reads (and a few it ignores). */
export function podObject(p: {
  namespace: string;
  name: string;
  serviceAccount?: string;
  nodeName?: string;
  ips?: string[];
  hostNetwork?: boolean;
  labels?: Record<string, string>;
}): Obj {
  const ips = p.ips ?? [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace,
      uid: `uid-${p.namespace}-${p.name}`,
      labels: p.labels ?? {},
    },
    spec: {
      serviceAccountName: p.serviceAccount ?? 'default',
      ...(p.nodeName === undefined ? {} : { nodeName: p.nodeName }),
      ...(p.hostNetwork ? { hostNetwork: true } : {}),
      containers: [{ name: 'app', image: 'registry.example/app:1' }],
    },
    status: {
      phase: 'Running',
      ...(ips[0] === undefined ? {} : { podIP: ips[0] }),
      podIPs: ips.map((ip) => ({ ip })),
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

/** The Kubernetes API server test double. See the file header. */
export class FakeKubeApiServer {
  readonly #server: Server;
  readonly #token: string | undefined;
  readonly #objects = Object.fromEntries(RESOURCES.map((r) => [r, new Map()])) as Record<
    Resource,
    Map<string, Obj>
  >;
  readonly #log = Object.fromEntries(RESOURCES.map((r) => [r, []])) as unknown as Record<
    Resource,
    LoggedEvent[]
  >;
  readonly #watches = new Set<OpenWatch>();
  readonly #pages = new Map<string, { rv: number; items: Obj[] }>();
  readonly #events = new EventEmitter();
  #rv = 1;
  /** Watches and continue tokens from before this revision are gone (410). */
  #compacted = 0;
  #down = false;
  #nextPage = 0;
  /** Every request, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Base URL, `http://127.0.0.1:PORT`. */
  url = '';

  private constructor(token: string | undefined) {
    this.#token = token;
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  /** Starts a double on 127.0.0.1:0; `token` is the bearer token it demands. */
  static async start(options: { token?: string } = {}): Promise<FakeKubeApiServer> {
    const api = new FakeKubeApiServer(options.token);
    api.#server.listen(0, '127.0.0.1');
    await once(api.#server, 'listening');
    api.url = `http://127.0.0.1:${(api.#server.address() as AddressInfo).port}`;
    return api;
  }

  /** The current cluster-wide resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Open watch connections (of one resource, or all). */
  openWatches(resource?: Resource): number {
    return [...this.#watches].filter((w) => resource === undefined || w.resource === resource)
      .length;
  }

  /** Creates or replaces an object (ADDED or MODIFIED); returns its new resourceVersion. */
  put(resource: Resource, object: Record<string, unknown>): number {
    const obj = structuredClone(object) as Obj;
    const key = keyOf(resource, obj);
    return this.#write(resource, key, obj);
  }

  /** Stores any object under `key`, even one a real server would refuse (malformed). */
  putRaw(resource: Resource, key: string, object: Record<string, unknown>): number {
    return this.#write(resource, key, structuredClone(object) as Obj);
  }

  /** Changes an object in place (MODIFIED). */
  update(resource: Resource, key: string, mutate: (obj: Obj) => void): number {
    const current = this.#objects[resource].get(key);
    if (!current) throw new Error(`fake apiserver: no ${resource} ${key}`);
    const obj = structuredClone(current);
    mutate(obj);
    return this.#write(resource, key, obj);
  }

  /** Deletes an object (DELETED). */
  delete(resource: Resource, key: string): number {
    const current = this.#objects[resource].get(key);
    if (!current) throw new Error(`fake apiserver: no ${resource} ${key}`);
    this.#objects[resource].delete(key);
    const obj = structuredClone(current);
    obj.metadata['resourceVersion'] = String(++this.#rv);
    this.#emit(resource, { rv: this.#rv, type: 'DELETED', object: obj });
    return this.#rv;
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that allows them. */
  bookmark(resource?: Resource): void {
    for (const w of this.#watches)
      if (w.bookmarks && (resource === undefined || w.resource === resource))
        this.#send(w, {
          type: 'BOOKMARK',
          object: {
            kind: KIND[w.resource],
            apiVersion: 'v1',
            metadata: { resourceVersion: String(this.#rv) },
          },
        });
  }

  /** Forgets the event log up to now: older resourceVersions and continue tokens get 410. */
  compact(): void {
    this.#compacted = this.#rv;
    for (const r of RESOURCES) this.#log[r] = this.#log[r].filter((e) => e.rv > this.#rv);
  }

  /** Destroys every watch connection's socket mid-stream, without ending the response. */
  dropWatches(resource?: Resource): void {
    for (const w of [...this.#watches])
      if (resource === undefined || w.resource === resource) {
        this.#watches.delete(w);
        clearTimeout(w.timer);
        w.res.socket?.destroy();
      }
  }

  /** Ends every watch cleanly, as the server's own watch timeout does. */
  endWatches(resource?: Resource): void {
    for (const w of [...this.#watches])
      if (resource === undefined || w.resource === resource) {
        this.#watches.delete(w);
        clearTimeout(w.timer);
        w.res.end();
      }
  }

  /** Removes an object without any watch event: an event the informer never saw. */
  forget(resource: Resource, key: string): void {
    this.#objects[resource].delete(key);
    this.#rv += 1;
  }

  /** Resolves when exactly `n` watches are open; rejects after `timeoutMs`. */
  async waitForOpenWatches(n: number, timeoutMs = 5000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    while (this.openWatches() !== n) {
      await once(this.#events, 'watches', { signal }).catch(() => {
        throw new Error(`fake apiserver: ${this.openWatches()} watches open, expected ${n}`);
      });
    }
  }

  /** While down, every request answers 500; going down drops the open watches. */
  setDown(down: boolean): void {
    this.#down = down;
    if (down) this.dropWatches();
  }

  /** Resolves when `pred` holds for the recorded requests; rejects after `timeoutMs`. */
  async waitForRequests(
    pred: (r: readonly RecordedRequest[]) => boolean,
    timeoutMs = 5000,
  ): Promise<void> {
    if (pred(this.requests)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#events.off('request', check);
        reject(new Error(`fake apiserver: condition on requests not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (!pred(this.requests)) return;
        clearTimeout(timer);
        this.#events.off('request', check);
        resolve();
      };
      this.#events.on('request', check);
    });
  }

  /** Ends every connection and stops listening. */
  async close(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #write(resource: Resource, key: string, obj: Obj): number {
    if (typeof obj.metadata !== 'object' || obj.metadata === null) obj.metadata = {};
    const existed = this.#objects[resource].has(key);
    obj.metadata['resourceVersion'] = String(++this.#rv);
    this.#objects[resource].set(key, obj);
    this.#emit(resource, { rv: this.#rv, type: existed ? 'MODIFIED' : 'ADDED', object: obj });
    return this.#rv;
  }

  #emit(resource: Resource, event: LoggedEvent): void {
    this.#log[resource].push(event);
    for (const w of this.#watches)
      if (w.resource === resource) this.#send(w, { type: event.type, object: event.object });
  }

  #send(w: OpenWatch, event: { type: string; object: unknown }): void {
    w.res.write(JSON.stringify(event) + '\n');
  }

  #record(
    req: IncomingMessage,
    resource: Resource | undefined,
    watch: boolean,
    query: Record<string, string>,
    code: number,
    expired = false,
  ): void {
    this.requests.push({
      method: req.method ?? '',
      resource,
      watch,
      query,
      status: code,
      expired,
      at: Date.now(),
    });
    this.#events.emit('request');
  }

  #json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.#handleAttestation(req, res)) return;
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const resource: Resource | undefined = RESOURCES.find(
      (r) => RESOURCE_PATHS[r] === url.pathname,
    );
    const watch = query['watch'] === 'true' || query['watch'] === '1';
    const answer = (code: number, body: unknown): void => {
      this.#record(req, resource, watch, query, code);
      this.#json(res, code, body);
    };
    if (this.#down)
      return answer(500, status(500, 'InternalError', 'etcdserver: request timed out'));
    if (this.#token !== undefined && req.headers.authorization !== `Bearer ${this.#token}`)
      return answer(401, status(401, 'Unauthorized', 'Unauthorized'));
    if (req.method !== 'GET')
      return answer(405, status(405, 'MethodNotAllowed', 'the double only serves GET'));
    if (resource === undefined)
      return answer(
        404,
        status(404, 'NotFound', 'the server could not find the requested resource'),
      );
    if (watch) return this.#watch(req, res, resource, query);
    return this.#list(resource, query, answer);
  }

  #list(
    resource: Resource,
    query: Record<string, string>,
    answer: (code: number, body: unknown) => void,
  ): void {
    const kind = `${KIND[resource]}List`;
    let rv = this.#rv;
    let items: Obj[];
    let offset = 0;
    const cont = query['continue'];
    if (cont !== undefined && cont !== '') {
      let token: { id: string; offset: number };
      try {
        token = JSON.parse(Buffer.from(cont, 'base64url').toString()) as {
          id: string;
          offset: number;
        };
      } catch {
        return answer(400, status(400, 'BadRequest', 'invalid continue token'));
      }
      const page = this.#pages.get(token.id);
      if (!page || page.rv < this.#compacted)
        return answer(
          410,
          status(
            410,
            'Expired',
            'The provided continue parameter is too old to display a consistent list result.',
          ),
        );
      rv = page.rv;
      items = page.items;
      offset = token.offset;
    } else {
      // Items of a List come without kind/apiVersion, as from the real server.
      items = [...this.#objects[resource].entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([, o]) => {
          const { kind: _k, apiVersion: _a, ...rest } = structuredClone(o);
          return rest as Obj;
        });
    }
    const limit = Number(query['limit'] ?? '0');
    const paged =
      query['resourceVersionMatch'] === undefined && limit > 0 && items.length - offset > limit;
    const pageItems = paged ? items.slice(offset, offset + limit) : items.slice(offset);
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (paged) {
      let id =
        cont === undefined || cont === ''
          ? undefined
          : (JSON.parse(Buffer.from(cont, 'base64url').toString()) as { id: string }).id;
      if (id === undefined) {
        id = String(++this.#nextPage);
        this.#pages.set(id, { rv, items });
      }
      metadata['continue'] = Buffer.from(JSON.stringify({ id, offset: offset + limit })).toString(
        'base64url',
      );
      metadata['remainingItemCount'] = items.length - offset - limit;
    }
    answer(200, { kind, apiVersion: 'v1', metadata, items: pageItems });
  }

  #watch(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    query: Record<string, string>,
  ): void {
    const from = query['resourceVersion'] ?? '';
    if (from !== '' && !/^\d+$/.test(from)) {
      this.#record(req, resource, true, query, 400);
      return this.#json(res, 400, status(400, 'BadRequest', `invalid resourceVersion "${from}"`));
    }
    const expired = from !== '' && from !== '0' && Number(from) < this.#compacted;
    this.#record(req, resource, true, query, 200, expired);
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
    });
    res.flushHeaders();
    const w: OpenWatch = {
      resource,
      res,
      bookmarks: query['allowWatchBookmarks'] === 'true',
      timer: undefined,
    };
    if (from === '' || from === '0') {
      for (const object of this.#objects[resource].values())
        this.#send(w, { type: 'ADDED', object });
    } else {
      const n = Number(from);
      if (expired) {
        this.#send(w, {
          type: 'ERROR',
          object: status(410, 'Expired', `too old resource version: ${n} (${this.#compacted})`),
        });
        res.end();
        return;
      }
      for (const e of this.#log[resource])
        if (e.rv > n) this.#send(w, { type: e.type, object: e.object });
    }
    const timeout = Number(query['timeoutSeconds'] ?? '0');
    if (timeout > 0)
      w.timer = setTimeout(() => {
        this.#watches.delete(w);
        res.end();
      }, timeout * 1000);
    this.#watches.add(w);
    this.#events.emit('watches');
    res.on('close', () => {
      clearTimeout(w.timer);
      this.#watches.delete(w);
      this.#events.emit('watches');
    });
  }

  // ---- TokenReview and GET one Pod (node attestation of the cluster signer) ----

  readonly #tokens = new Map<string, ReviewedToken>();
  /** TokenReview requests seen, in order. */
  readonly tokenReviews: { token: string; audiences: string[] }[] = [];

  /**
   * Makes `token` valid for TokenReview as the real API server would judge a
   * projected token: authenticated only before `exp` (seconds) and when its
   * audiences meet the requested ones; the answer carries the intersection.
   */
  addToken(token: string, t: ReviewedToken): void {
    this.#tokens.set(token, t);
  }

  readonly #configMaps = new Map<string, Obj>();
  #configMapVersion = 1;

  /** A ConfigMap as stored (GET/POST/PUT with resourceVersion conflicts), or undefined. */
  configMap(namespace: string, name: string): Obj | undefined {
    return this.#configMaps.get(`${namespace}/${name}`);
  }

  /** Replaces a stored ConfigMap's data behind the client's back (a concurrent writer). */
  touchConfigMap(namespace: string, name: string, data: Record<string, string>): void {
    const current = this.#configMaps.get(`${namespace}/${name}`);
    if (!current) throw new Error(`fake apiserver: no configmap ${namespace}/${name}`);
    this.#configMaps.set(`${namespace}/${name}`, {
      ...current,
      metadata: { ...current.metadata, resourceVersion: String(++this.#configMapVersion) },
      data,
    });
  }

  #configMapRequest(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string,
    name: string | undefined,
  ): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += String(c)));
    req.on('end', () => {
      const key = `${namespace}/${name ?? ''}`;
      if (req.method === 'GET' && name !== undefined) {
        const found = this.#configMaps.get(key);
        if (found) return this.#json(res, 200, found);
        return this.#json(res, 404, status(404, 'NotFound', `configmaps "${name}" not found`));
      }
      const obj = JSON.parse(body) as Obj;
      if (req.method === 'POST' && name === undefined) {
        const k = `${namespace}/${String(obj.metadata['name'])}`;
        if (this.#configMaps.has(k))
          return this.#json(res, 409, status(409, 'AlreadyExists', 'already exists'));
        const stored = {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: String(++this.#configMapVersion) },
        };
        this.#configMaps.set(k, stored);
        return this.#json(res, 201, stored);
      }
      if (req.method === 'PUT' && name !== undefined) {
        const current = this.#configMaps.get(key);
        if (!current) return this.#json(res, 404, status(404, 'NotFound', 'not found'));
        if (obj.metadata['resourceVersion'] !== current.metadata['resourceVersion'])
          return this.#json(res, 409, status(409, 'Conflict', 'the object has been modified'));
        const stored = {
          ...obj,
          metadata: { ...obj.metadata, resourceVersion: String(++this.#configMapVersion) },
        };
        this.#configMaps.set(key, stored);
        return this.#json(res, 200, stored);
      }
      this.#json(res, 405, status(405, 'MethodNotAllowed', 'not served by the double'));
    });
  }

  #handleAttestation(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => (body += String(c)));
      req.on('end', () => {
        const review = JSON.parse(body) as { spec?: { token?: string; audiences?: string[] } };
        const token = review.spec?.token ?? '';
        const asked = review.spec?.audiences ?? [];
        this.tokenReviews.push({ token, audiences: asked });
        const t = this.#tokens.get(token);
        let statusBody: Record<string, unknown>;
        if (!t) statusBody = { authenticated: false, error: 'invalid bearer token' };
        else if (t.exp * 1000 <= Date.now())
          statusBody = { authenticated: false, error: 'token has expired' };
        else {
          const audiences = t.audiences.filter((a) => asked.includes(a));
          statusBody =
            asked.length > 0 && audiences.length === 0
              ? {
                  authenticated: false,
                  error: 'token audiences is invalid for the target audiences',
                }
              : {
                  authenticated: true,
                  audiences: asked.length > 0 ? audiences : t.audiences,
                  user: { username: t.username, uid: 'uid-sa', extra: t.extra },
                };
        }
        this.#json(res, 201, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          status: statusBody,
        });
      });
      return true;
    }
    const cm = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps(?:\/([^/]+))?$/.exec(url.pathname);
    if (cm) {
      this.#configMapRequest(req, res, cm[1] ?? '', cm[2]);
      return true;
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const pod = this.#objects.pods.get(`${m[1]}/${m[2]}`);
      if (pod) this.#json(res, 200, pod);
      else this.#json(res, 404, status(404, 'NotFound', `pods "${m[2]}" not found`));
      return true;
    }
    return false;
  }
}

/**
 * Writes a kubeconfig pointing at `server` with a bearer token. Plain HTTP
 * needs `insecure-skip-tls-verify: true`: @kubernetes/client-node 1.4
 * refuses an http:// cluster without it.
 */
export function writeKubeconfig(dir: string, server: string, token: string): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: ${JSON.stringify(server)}
    insecure-skip-tls-verify: true
users:
- name: daemon
  user:
    token: ${JSON.stringify(token)}
contexts:
- name: fake
  context: {cluster: fake, user: daemon}
current-context: fake
`,
  );
  return path;
}
