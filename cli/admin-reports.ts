/**
 * The JSON answers of the daemon's admin routes `GET /status`, `/workloads`,
 * `/connections` and `/config`, as the CLI reads them, and their parsers.
 * Answers arrive as `unknown` and are checked field by field: a daemon of
 * another version or a garbled answer gives a `MESHLESS_E_ADMIN_RESPONSE`
 * naming the route and the field, never a crash in a renderer. Fields the
 * CLI does not show are not checked, so a newer daemon that adds some is
 * still understood. (`GET /certs` is `src/identity/certs-report.ts`.)
 */
import { MeshlessError } from '../src/errors.js';

/** `GET /status`: the node's daemon at a glance. */
export interface StatusReport {
  readonly nodeName: string;
  readonly trustDomain: string;
  readonly version: string;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly ready: boolean;
  /** Why the daemon is not ready; empty when it is. */
  readonly notReady: readonly string[];
  /** What to fix although the daemon serves (e.g. an unknown pod address space); [] from older daemons. */
  readonly warnings: readonly string[];
  readonly discovery: {
    /** `file` or `kubernetes`. */
    readonly source: string;
    readonly synced: boolean;
    readonly namespaces: number;
    readonly pods: number;
    readonly addresses: number;
  };
  readonly workloads: {
    readonly registered: number;
    readonly enrolled: number;
    readonly proxied: number;
  };
  /** Workload identities (X509-SVIDs) held. */
  readonly identities: number;
  readonly hbonePool: {
    readonly connections: number;
    readonly streams: number;
    readonly connecting: number;
  };
  /** Connections being proxied now. */
  readonly connections: number;
  /** Per data-plane worker (absent from daemons before worker threads). */
  readonly dataPlaneWorkers: readonly {
    readonly worker: number;
    readonly connections: number;
    readonly pods: number;
    readonly restarts: number;
  }[];
}

/** The node and trust domain of a `/status` answer: all the other views need from it. */
export interface NodeInfo {
  readonly nodeName: string;
  readonly trustDomain: string;
}

/** One pod address. */
export interface WorkloadAddress {
  readonly family: number;
  readonly ip: string;
}

/** One entry of `GET /workloads`: a registration of the CNI plugin. */
export interface WorkloadReport {
  readonly containerId: string;
  readonly namespace: string;
  readonly podName: string;
  readonly netns: string;
  readonly addresses: readonly WorkloadAddress[];
  readonly enrolled: boolean;
  /** Why the workload is (not) enrolled. */
  readonly reason: string;
  /** Its SPIFFE ID while proxied; null otherwise. */
  readonly identity: string | null;
  /** ISO 8601. */
  readonly registeredAt: string;
}

/** One end of a proxied connection. */
export interface EndpointReport {
  readonly address: string;
  readonly port: number;
  /** SPIFFE ID, when known. */
  readonly identity?: string;
}

/** One entry of `GET /connections`: a connection being proxied now. */
export interface ConnectionReport {
  /** `namespace/name` of the workload on this node. */
  readonly pod: string;
  /** `outbound`, `inbound`, `inbound-plaintext` or `passthrough`. */
  readonly direction: string;
  readonly source: EndpointReport;
  readonly destination: EndpointReport;
  /** ISO 8601. */
  readonly startedAt: string;
}

/** `GET /config`: the effective daemon config, secrets left out by the daemon. */
export type ConfigReport = Readonly<Record<string, unknown>>;

type Json = Record<string, unknown>;

/** Reads one route's answer; every error names the route and the path of the field. */
class AnswerReader {
  readonly #route: string;
  constructor(route: string) {
    this.#route = route;
  }

  error(path: string, expected: string): MeshlessError {
    return new MeshlessError(
      'MESHLESS_E_ADMIN_RESPONSE',
      `the daemon's ${this.#route} answer is not understood: ${path} should be ${expected} ` +
        '(is the CLI the same version as the daemon?)',
      { details: { route: this.#route, path } },
    );
  }

  object(value: unknown, path: string): Json {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw this.error(path, 'an object');
    return value as Json;
  }

  array(value: unknown, path: string): readonly unknown[] {
    if (!Array.isArray(value)) throw this.error(path, 'an array');
    return value;
  }

  string(obj: Json, key: string, path: string): string {
    const v = obj[key];
    if (typeof v !== 'string') throw this.error(`${path}.${key}`, 'a string');
    return v;
  }

  number(obj: Json, key: string, path: string): number {
    const v = obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw this.error(`${path}.${key}`, 'a number');
    return v;
  }

  boolean(obj: Json, key: string, path: string): boolean {
    const v = obj[key];
    if (typeof v !== 'boolean') throw this.error(`${path}.${key}`, 'true or false');
    return v;
  }

  optionalString(obj: Json, key: string, path: string): string | undefined {
    return obj[key] === undefined || obj[key] === null ? undefined : this.string(obj, key, path);
  }

  strings(obj: Json, key: string, path: string): string[] {
    const list = this.array(obj[key], `${path}.${key}`);
    return list.map((v, i) => {
      if (typeof v !== 'string') throw this.error(`${path}.${key}[${i}]`, 'a string');
      return v;
    });
  }
}

/** Checks an untrusted `/status` answer. */
export function parseStatusReport(value: unknown): StatusReport {
  const r = new AnswerReader('/status');
  const s = r.object(value, 'status');
  const d = r.object(s.discovery, 'status.discovery');
  const w = r.object(s.workloads, 'status.workloads');
  const p = r.object(s.hbonePool, 'status.hbonePool');
  return {
    nodeName: r.string(s, 'nodeName', 'status'),
    trustDomain: r.string(s, 'trustDomain', 'status'),
    version: r.string(s, 'version', 'status'),
    startedAt: r.string(s, 'startedAt', 'status'),
    ready: r.boolean(s, 'ready', 'status'),
    notReady: r.strings(s, 'notReady', 'status'),
    warnings: s['warnings'] === undefined ? [] : r.strings(s, 'warnings', 'status'),
    discovery: {
      source: r.string(d, 'source', 'status.discovery'),
      synced: r.boolean(d, 'synced', 'status.discovery'),
      namespaces: r.number(d, 'namespaces', 'status.discovery'),
      pods: r.number(d, 'pods', 'status.discovery'),
      addresses: r.number(d, 'addresses', 'status.discovery'),
    },
    workloads: {
      registered: r.number(w, 'registered', 'status.workloads'),
      enrolled: r.number(w, 'enrolled', 'status.workloads'),
      proxied: r.number(w, 'proxied', 'status.workloads'),
    },
    identities: r.number(s, 'identities', 'status'),
    hbonePool: {
      connections: r.number(p, 'connections', 'status.hbonePool'),
      streams: r.number(p, 'streams', 'status.hbonePool'),
      connecting: r.number(p, 'connecting', 'status.hbonePool'),
    },
    connections: r.number(s, 'connections', 'status'),
    dataPlaneWorkers:
      s['dataPlaneWorkers'] === undefined
        ? []
        : r.array(s['dataPlaneWorkers'], 'status.dataPlaneWorkers').map((v, i) => {
            const path = `status.dataPlaneWorkers[${i}]`;
            const x = r.object(v, path);
            return {
              worker: r.number(x, 'worker', path),
              connections: r.number(x, 'connections', path),
              pods: r.number(x, 'pods', path),
              restarts: r.number(x, 'restarts', path),
            };
          }),
  };
}

/** The node name and trust domain of an untrusted `/status` answer, nothing else checked. */
export function parseNodeInfo(value: unknown): NodeInfo {
  const r = new AnswerReader('/status');
  const s = r.object(value, 'status');
  return {
    nodeName: r.string(s, 'nodeName', 'status'),
    trustDomain: r.string(s, 'trustDomain', 'status'),
  };
}

/** Checks an untrusted `/workloads` answer. */
export function parseWorkloadsReport(value: unknown): WorkloadReport[] {
  const r = new AnswerReader('/workloads');
  return r.array(value, 'workloads').map((v, i) => {
    const path = `workloads[${i}]`;
    const w = r.object(v, path);
    return {
      containerId: r.string(w, 'containerId', path),
      namespace: r.string(w, 'namespace', path),
      podName: r.string(w, 'podName', path),
      netns: r.string(w, 'netns', path),
      addresses: r.array(w.addresses, `${path}.addresses`).map((a, j) => {
        const at = `${path}.addresses[${j}]`;
        const address = r.object(a, at);
        return { family: r.number(address, 'family', at), ip: r.string(address, 'ip', at) };
      }),
      enrolled: r.boolean(w, 'enrolled', path),
      reason: r.string(w, 'reason', path),
      identity: r.optionalString(w, 'identity', path) ?? null,
      registeredAt: r.string(w, 'registeredAt', path),
    };
  });
}

function endpoint(r: AnswerReader, value: unknown, path: string): EndpointReport {
  const e = r.object(value, path);
  const identity = r.optionalString(e, 'identity', path);
  return {
    address: r.string(e, 'address', path),
    port: r.number(e, 'port', path),
    ...(identity === undefined ? {} : { identity }),
  };
}

/** Checks an untrusted `/connections` answer. */
export function parseConnectionsReport(value: unknown): ConnectionReport[] {
  const r = new AnswerReader('/connections');
  return r.array(value, 'connections').map((v, i) => {
    const path = `connections[${i}]`;
    const c = r.object(v, path);
    return {
      pod: r.string(c, 'pod', path),
      direction: r.string(c, 'direction', path),
      source: endpoint(r, c.source, `${path}.source`),
      destination: endpoint(r, c.destination, `${path}.destination`),
      startedAt: r.string(c, 'startedAt', path),
    };
  });
}

/** Checks an untrusted `/config` answer is a config object (its keys are the daemon's business). */
export function parseConfigReport(value: unknown): ConfigReport {
  const r = new AnswerReader('/config');
  const c = r.object(value, 'config');
  r.string(c, 'nodeName', 'config');
  r.string(c, 'trustDomain', 'config');
  return c;
}
