/**
 * Whether node mode uninstalls the plugin when its container is stopped.
 *
 * A DaemonSet pod is stopped for three reasons: the DaemonSet is being
 * removed, it is being upgraded (rolling update) or restarted, or the node
 * is shutting down. Only the first should take our entry out. Removing it
 * during an upgrade opens a window in which pods start without the plugin,
 * so their traffic silently skips mTLS (istio/istio #60882, #55968); a stale entry costs far less: enrolled pods on that node wait
 * (CNI error 11) until a daemon is back. So, like istio-cni's node agent,
 * we look up our own DaemonSet when stopped and uninstall only when it is
 * gone or being deleted; when in doubt we keep the entry (fail closed).
 *
 * `kubectl delete -f deploy/` may delete our ServiceAccount or RBAC before
 * the pods stop, so the lookup answers 401/403. That counts as "being
 * removed" only when the same lookup succeeded at start (so the permission
 * existed and has since been taken away); a lookup that never worked is a
 * misconfiguration, and then we keep the entry.
 *
 * decideExit and classifyDaemonSet are pure; lookUpDaemonSet is the one
 * HTTP call.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { MeshlessError } from '../errors.js';
import type { ApiCredentials } from './kubeconfig.js';

/** What the API server says about our DaemonSet. */
export type DaemonSetState =
  /** Exists and is not being deleted: an upgrade, a restart or a node shutdown. */
  | 'present'
  /** Has a deletionTimestamp (foreground deletion). */
  | 'deleting'
  /** 404: deleted (background deletion removes the object before the pods). */
  | 'absent'
  /** 401/403: our token or RBAC does not allow the lookup (any more). */
  | 'forbidden'
  /** No answer, a 5xx, or an answer we cannot read. */
  | 'unknown';

/** The decision and why, for the log. */
export interface ExitDecision {
  readonly uninstall: boolean;
  readonly reason: string;
}

/** A DaemonSet reference, `namespace/name`. */
export interface DaemonSetRef {
  readonly namespace: string;
  readonly name: string;
}

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Parses `namespace/name`.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the flag.
 */
export function parseDaemonSetRef(text: string): DaemonSetRef {
  const [namespace = '', name = '', ...rest] = text.split('/');
  if (rest.length > 0 || !DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name))
    throw new MeshlessError(
      'MESHLESS_E_INSTALL',
      `--owner-daemonset "${text}" must be "namespace/name" (the DaemonSet this pod belongs to)`,
    );
  return { namespace, name };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The state an API answer (status code and parsed body) means. */
export function classifyDaemonSet(status: number, body: unknown): DaemonSetState {
  if (status === 404) return 'absent';
  if (status === 401 || status === 403) return 'forbidden';
  if (status !== 200 || !isObject(body) || body.kind !== 'DaemonSet') return 'unknown';
  const meta = body.metadata;
  if (!isObject(meta)) return 'unknown';
  return typeof meta.deletionTimestamp === 'string' && meta.deletionTimestamp !== ''
    ? 'deleting'
    : 'present';
}

/**
 * Uninstall on exit or not, given the DaemonSet's state when the watcher
 * started and now.
 */
export function decideExit(atStart: DaemonSetState, atExit: DaemonSetState): ExitDecision {
  switch (atExit) {
    case 'absent':
      return { uninstall: true, reason: 'the DaemonSet was deleted' };
    case 'deleting':
      return { uninstall: true, reason: 'the DaemonSet is being deleted' };
    case 'forbidden':
      return atStart === 'present' || atStart === 'deleting'
        ? {
            uninstall: true,
            reason:
              'the DaemonSet lookup worked at start and is now refused: RBAC or ServiceAccount removed',
          }
        : {
            uninstall: false,
            reason:
              'the DaemonSet lookup is refused and never worked (check the Role); keeping the entry',
          };
    case 'present':
      return {
        uninstall: false,
        reason: 'the DaemonSet still exists: an upgrade, a restart or a node shutdown',
      };
    case 'unknown':
      return {
        uninstall: false,
        reason: 'the API server did not answer clearly; keeping the entry (fail closed)',
      };
  }
}

/**
 * GETs the DaemonSet with the service account's credentials. Never throws:
 * a failure is `unknown`.
 */
export function lookUpDaemonSet(
  creds: ApiCredentials,
  ref: DaemonSetRef,
  timeoutMs = 5000,
): Promise<DaemonSetState> {
  let url: URL;
  try {
    url = new URL(
      `/apis/apps/v1/namespaces/${encodeURIComponent(ref.namespace)}/daemonsets/${encodeURIComponent(ref.name)}`,
      creds.server,
    );
  } catch {
    return Promise.resolve('unknown');
  }
  const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve) => {
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 1 << 20) chunks.push(c);
      });
      res.on('error', () => resolve('unknown'));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        resolve(classifyDaemonSet(res.statusCode ?? 0, body));
      });
    };
    const req = request(
      url,
      {
        method: 'GET',
        agent: false, // no keep-alive socket holding a stopping process open
        ca: creds.caPem,
        headers: { authorization: `Bearer ${creds.token}`, accept: 'application/json' },
        timeout: timeoutMs,
      },
      onResponse,
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('unknown'));
    req.end();
  });
}
