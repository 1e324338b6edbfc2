/**
 * The demo's proof: for each row of the behaviour matrix
 * (docs/reference/behaviour.md), one application
 * connection from a pod on node1 to a pod on node2 carries a random marker
 * while tcpdump captures the node link; the capture is then classified
 * (TLS 1.3 on 15008 with the marker absent, or the marker in plaintext),
 * and the daemons' connection log lines say which path meshless took and
 * with which identities.
 *
 * The decisions (what a row must show, what a capture shows, whether a row
 * passed) are pure; {@link runTraffic} does the I/O.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MeshlessError, errorMessage } from '../errors.js';
import type { ConnectionDirection } from '../hbone/connection-record.js';
import { PROXY_PORTS } from '../redirect/constants.js';
import { Capture } from '../sim/capture.js';
import { NETNS_DIR } from '../sim/netns.js';
import { payloadContains, tlsHandshakes, type TcpSegment } from '../sim/pcap.js';
import { converse } from '../sim/pod-apps.js';
import type { DemoNode, DemoPod, DemoState } from './demo-state.js';
import { peerOfGreeting } from './pod-server.js';
import { DEMO_SERVICES, type TrafficPair } from './topology.js';

/**
 * What the node link showed for a row's connection: a TLS 1.3 handshake on
 * 15008 and no marker; TLS records on 15008 of an HBONE connection pooled
 * earlier (its handshake is not in this capture) and no marker; the marker
 * in plaintext; TLS of another version or other unreadable bytes; nothing.
 */
export type WireVerdict = 'mtls-1.3' | 'tls-pooled' | 'plaintext' | 'tls-not-1.3' | 'nothing';

/** One step meshless took, from a daemon's connection log. */
export interface MeshStep {
  readonly node: string;
  readonly direction: ConnectionDirection;
  readonly sourceIdentity: string | undefined;
  readonly destinationIdentity: string | undefined;
  readonly outcome: string;
  /** The policy that denied it (`Kind namespace/name`), when one did. */
  readonly policy?: string;
}

/** One end of a row. */
export interface RowEnd {
  readonly pod: string;
  readonly namespace: string;
  readonly node: string;
  readonly ip: string;
  readonly enrolled: boolean;
}

/** What a row must show (docs/reference/behaviour.md). */
export interface RowExpectation {
  readonly wire: WireVerdict;
  /** The directions meshless logs for it, in any order; none: we are not involved. */
  readonly path: readonly ConnectionDirection[];
  /**
   * The AuthorizationPolicy (`namespace/name`) that must deny it at the
   * destination: the client's connection is reset, the destination's
   * record says `denied` and names it.
   */
  readonly deniedBy?: string;
}

/** What a row showed. */
export interface RowObservation {
  readonly wire: WireVerdict;
  readonly markerOnWire: boolean;
  /** TLS versions the ServerHellos on 15008 selected, e.g. `1.3`. */
  readonly tlsVersions: readonly string[];
  readonly path: readonly MeshStep[];
  /** The marker came back intact. */
  readonly echoed: boolean;
  /** The peer address the destination application saw (`ip:port`). */
  readonly peerSeen: string | undefined;
  readonly capture: string;
  /** Set when the connection itself failed. */
  readonly error?: string;
}

/** A row of the demo's table. */
export interface TrafficRow {
  readonly source: RowEnd;
  readonly destination: RowEnd;
  /** The Service the source dialled (its ClusterIP and port); `destination` is its backend. */
  readonly service?: { readonly name: string; readonly address: string; readonly port: number };
  readonly marker: string;
  readonly expected: RowExpectation;
  readonly seen: RowObservation;
  readonly ok: boolean;
  /** Why it is not ok (empty when ok). */
  readonly problems: readonly string[];
}

/** What the behaviour matrix (docs/reference/behaviour.md) requires for a pair. Pure. */
export function expectationFor(
  sourceEnrolled: boolean,
  destinationEnrolled: boolean,
): RowExpectation {
  if (sourceEnrolled && destinationEnrolled)
    return { wire: 'mtls-1.3', path: ['outbound', 'inbound'] };
  if (sourceEnrolled) return { wire: 'plaintext', path: ['passthrough'] };
  if (destinationEnrolled) return { wire: 'plaintext', path: ['inbound-plaintext'] };
  return { wire: 'plaintext', path: [] };
}

/** `0x0304` -> `1.3`. */
function tlsVersionName(v: number): string {
  return v >= 0x0301 && v <= 0x0304 ? `1.${v - 0x0301}` : `0x${v.toString(16)}`;
}

/** Classifies a capture of one row's traffic. Pure. */
export function classifyCapture(
  segments: readonly TcpSegment[],
  marker: string,
): Pick<RowObservation, 'wire' | 'markerOnWire' | 'tlsVersions'> {
  const markerOnWire = payloadContains(segments, marker);
  const tls = tlsHandshakes(segments, PROXY_PORTS.inboundHbone);
  const tlsVersions = tls.serverVersions.map(tlsVersionName);
  const data = segments.filter((s) => s.payload.length > 0);
  const hbone = PROXY_PORTS.inboundHbone;
  const isTlsRecord = (b: Buffer): boolean =>
    b.length >= 5 && b[0] !== undefined && b[0] >= 0x14 && b[0] <= 0x17 && b[1] === 0x03;
  let wire: WireVerdict;
  if (markerOnWire) wire = 'plaintext';
  else if (tls.serverVersions.length > 0)
    wire = tls.serverVersions.every((v) => v === 0x0304) ? 'mtls-1.3' : 'tls-not-1.3';
  else if (data.length === 0) wire = 'nothing';
  else
    wire =
      data.every((s) => s.srcPort === hbone || s.dstPort === hbone) &&
      data.some((s) => isTlsRecord(s.payload))
        ? 'tls-pooled'
        : 'tls-not-1.3';
  return { wire, markerOnWire, tlsVersions };
}

/**
 * The connection records in a daemon's log text (JSON lines with msg
 * "connection") that concern `a` and `b`. Pure.
 */
export function meshStepsFromLog(node: string, text: string, a: string, b: string): MeshStep[] {
  const out: MeshStep[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"connection"')) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof doc !== 'object' || doc === null) continue;
    const rec = (doc as { msg?: unknown; connection?: unknown }).connection;
    if ((doc as { msg?: unknown }).msg !== 'connection' || typeof rec !== 'object' || rec === null)
      continue;
    const r = rec as {
      direction?: unknown;
      outcome?: unknown;
      policy?: unknown;
      source?: { address?: unknown; identity?: unknown };
      destination?: { address?: unknown; identity?: unknown };
    };
    const src = r.source?.address;
    const dst = r.destination?.address;
    if (src !== a || dst !== b) continue;
    out.push({
      node,
      direction: r.direction as ConnectionDirection,
      sourceIdentity: typeof r.source?.identity === 'string' ? r.source.identity : undefined,
      destinationIdentity:
        typeof r.destination?.identity === 'string' ? r.destination.identity : undefined,
      outcome: typeof r.outcome === 'string' ? r.outcome : '?',
      ...(typeof r.policy === 'string' ? { policy: r.policy } : {}),
    });
  }
  return out;
}

/** Judges a row. Pure. */
export function judgeRow(
  source: RowEnd,
  expected: RowExpectation,
  seen: RowObservation,
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (expected.deniedBy !== undefined) {
    // Denied at the destination: the client is reset, nothing delivered.
    if (!seen.error) problems.push('the connection was not refused');
    if (seen.markerOnWire) problems.push('the marker crossed the link in plaintext');
    const want = `AuthorizationPolicy ${expected.deniedBy}`;
    if (
      !seen.path.some(
        (s) => s.direction === 'inbound' && s.outcome === 'denied' && s.policy === want,
      )
    )
      problems.push(`no inbound record denied by ${want}`);
    return { ok: problems.length === 0, problems };
  }
  if (seen.error) problems.push(`connection failed: ${seen.error}`);
  else {
    if (!seen.echoed) problems.push('the marker did not come back intact');
    const peerIp = seen.peerSeen?.replace(/:\d+$/, '');
    if (peerIp !== source.ip)
      problems.push(`the application saw ${seen.peerSeen ?? 'nothing'}, not ${source.ip}`);
  }
  // A pooled HBONE connection's handshake happened before this capture (the
  // HBONE server speaks TLS 1.3 only): what matters is no plaintext byte.
  const wireOk =
    seen.wire === expected.wire || (expected.wire === 'mtls-1.3' && seen.wire === 'tls-pooled');
  if (!wireOk) problems.push(`wire: ${seen.wire}, want ${expected.wire}`);
  const directions = new Set(seen.path.map((s) => s.direction));
  for (const d of expected.path) if (!directions.has(d)) problems.push(`no ${d} connection logged`);
  for (const d of directions)
    if (!expected.path.includes(d)) problems.push(`unexpected ${d} connection logged`);
  if (expected.wire === 'mtls-1.3') {
    const verified = seen.path.some((s) => s.sourceIdentity && s.destinationIdentity);
    if (!verified) problems.push('no connection record with both identities');
  }
  return { ok: problems.length === 0, problems };
}

/** The identities a row's connection carried, `source -> destination`, when known. Pure. */
export function rowIdentities(row: Pick<TrafficRow, 'seen'>): {
  source?: string;
  destination?: string;
} {
  const withBoth =
    row.seen.path.find((s) => s.direction === 'inbound' && s.sourceIdentity) ??
    row.seen.path.find((s) => s.sourceIdentity || s.destinationIdentity);
  return {
    ...(withBoth?.sourceIdentity ? { source: withBoth.sourceIdentity } : {}),
    ...(withBoth?.destinationIdentity ? { destination: withBoth.destinationIdentity } : {}),
  };
}

function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Sends `data`, half-closes, and collects the whole answer. */
async function converseText(
  netnsPath: string,
  host: string,
  port: number,
  data: string,
  timeoutMs: number,
): Promise<string> {
  const answer = await converse(netnsPath, host, port, [data], {
    connectTimeoutMs: timeoutMs,
    timeoutMs,
    allowHalfOpen: true,
    timeoutError: () => new Error(`no complete answer from ${host}:${port} within ${timeoutMs} ms`),
  });
  return answer.toString('utf8');
}

/** Options of {@link runTraffic}. */
export interface TrafficOptions {
  /** Told before each row. */
  readonly onRow?: (index: number, pair: TrafficPair) => void;
  /** Per connection; default 10 s. */
  readonly timeoutMs?: number;
  /** Namespace -> enrolled, as the rows' expectations are to assume; default the state's labels. */
  readonly enrolment?: Readonly<Record<string, boolean>>;
}

function end(state: DemoState, pod: DemoPod, enrolment: Readonly<Record<string, boolean>>): RowEnd {
  if (!pod.ip)
    throw new MeshlessError('MESHLESS_E_DEMO_TRAFFIC', `pod ${pod.name} has no IP address`);
  void state;
  return {
    pod: pod.name,
    namespace: pod.namespace,
    node: pod.node,
    ip: pod.ip,
    enrolled: enrolment[pod.namespace] ?? false,
  };
}

/**
 * Runs each pair in turn while capturing the link of the source's node,
 * and judges it. Captures go to `<dir>/captures/`.
 * @throws MeshlessError `MESHLESS_E_DEMO_TRAFFIC` for an unknown pod or node;
 *   `MESHLESS_E_SIM` when tcpdump cannot start.
 */
export async function runTraffic(
  state: DemoState,
  pairs: readonly TrafficPair[],
  options: TrafficOptions = {},
): Promise<TrafficRow[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const enrolment = options.enrolment ?? state.namespaces;
  const podOf = (name: string): DemoPod => {
    const p = state.pods.find((x) => x.name === name);
    if (!p) throw new MeshlessError('MESHLESS_E_DEMO_TRAFFIC', `no demo pod ${name}`);
    return p;
  };
  const nodeOf = (name: string): DemoNode => {
    const n = state.nodes.find((x) => x.name === name);
    if (!n) throw new MeshlessError('MESHLESS_E_DEMO_TRAFFIC', `no demo node ${name}`);
    return n;
  };
  const captures = join(state.dir, 'captures');
  mkdirSync(captures, { recursive: true, mode: 0o700 });
  const rows: TrafficRow[] = [];
  for (const [i, pair] of pairs.entries()) {
    options.onRow?.(i, pair);
    const srcPod = podOf(pair.source);
    const dstPod = podOf(pair.destination);
    const source = end(state, srcPod, enrolment);
    const destination = end(state, dstPod, enrolment);
    const expected: RowExpectation =
      pair.deniedBy === undefined
        ? expectationFor(source.enrolled, destination.enrolled)
        : { wire: 'mtls-1.3', path: ['outbound', 'inbound'], deniedBy: pair.deniedBy };
    const svc =
      pair.service === undefined
        ? undefined
        : DEMO_SERVICES.find((x) => x.name === pair.service && x.backends.includes(dstPod.name));
    if (pair.service !== undefined && svc === undefined)
      throw new MeshlessError(
        'MESHLESS_E_DEMO_TRAFFIC',
        `no demo Service ${pair.service} with backend ${dstPod.name}`,
      );
    const service =
      svc === undefined
        ? undefined
        : { name: `${svc.namespace}/${svc.name}`, address: svc.clusterIp, port: svc.port };
    const dial = service ?? { address: destination.ip, port: dstPod.port };
    const marker = `MESHLESS-DEMO-${randomBytes(8).toString('hex')}`;
    const netnsPath = `${NETNS_DIR}/${srcPod.netns}`;
    const offsets = state.nodes.map((n) => logSize(n.daemonLog));
    const linkNode = nodeOf(srcPod.node);
    const file = join(captures, `row${i + 1}-${pair.source}-${pair.destination}.pcap`);
    const cap = await Capture.start(linkNode.netns, linkNode.link, file);
    let echoed = false;
    let peerSeen: string | undefined;
    let error: string | undefined;
    let segments: TcpSegment[];
    try {
      const echo = await converseText(netnsPath, dial.address, dial.port, `${marker}\n`, timeoutMs);
      echoed = echo === `${marker}\n`;
      const http = await converseText(
        netnsPath,
        dial.address,
        dial.port,
        `GET / HTTP/1.1\r\nhost: ${dial.address}:${dial.port}\r\nconnection: close\r\n\r\n`,
        timeoutMs,
      );
      peerSeen = peerOfGreeting(http);
    } catch (err) {
      error = errorMessage(err);
    } finally {
      await new Promise((r) => setTimeout(r, 150));
      segments = await cap.stop();
    }
    // Connection records are logged when a connection ends: wait for them briefly.
    let path: MeshStep[] = [];
    const deadline = Date.now() + 2000;
    for (;;) {
      path = state.nodes.flatMap((n, k) =>
        meshStepsFromLog(n.name, readFrom(n.daemonLog, offsets[k] ?? 0), source.ip, destination.ip),
      );
      const have = new Set(path.map((s) => s.direction));
      if (expected.path.every((d) => have.has(d)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seen: RowObservation = {
      ...classifyCapture(segments, marker),
      path,
      echoed,
      peerSeen,
      capture: file,
      ...(error === undefined ? {} : { error }),
    };
    rows.push({
      source,
      destination,
      ...(service === undefined ? {} : { service }),
      marker,
      expected,
      seen,
      ...judgeRow(source, expected, seen),
    });
  }
  return rows;
}
