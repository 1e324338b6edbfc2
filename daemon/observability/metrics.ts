/**
 * The daemon's Prometheus metrics (prom-client), one registry per daemon so
 * several can run in one process (tests). Names follow Prometheus
 * conventions with the `meshless_` prefix; docs/metrics.md lists them (a
 * test fails when a metric is missing there).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionRecord } from '../../src/hbone/connection-record.js';

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly connectionsOpened: Counter<'direction'>;
  readonly connectionsClosed: Counter<'direction' | 'outcome'>;
  readonly bytes: Counter<'direction' | 'way'>;
  readonly handshakeFailures: Counter<'side' | 'reason'>;
  readonly streamsRefused: Counter<'reason'>;
  readonly sessionErrors: Counter<'reason'>;
  readonly connectionFailures: Counter<'direction' | 'reason'>;
  readonly policyDenials: Counter<'direction' | 'policy'>;
  readonly limitRefusals: Counter<'limit' | 'direction'>;
  readonly bufferBudgetExhausted: Counter;
  readonly poolConnections: Gauge;
  readonly poolStreams: Gauge;
  readonly certificateExpiry: Gauge<'identity'>;
  readonly enrolledWorkloads: Gauge;
  readonly signerReachable: Gauge;
  readonly signerFailures: Gauge;
  readonly cniEvents: Counter<'command' | 'outcome'>;
  readonly cniLatency: Histogram<'command'>;
  readonly dataPlaneWorkers: Gauge;
  readonly workerConnectionsOpened: Counter<'worker'>;
  readonly workerConnections: Gauge<'worker'>;
  readonly workerRestarts: Counter<'worker'>;

  constructor(defaults = true) {
    const registers = [this.registry];
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'meshless_' });
    this.connectionsOpened = new Counter({
      name: 'meshless_connections_opened_total',
      help: 'Connections accepted by the proxy, by direction',
      labelNames: ['direction'],
      registers,
    });
    this.connectionsClosed = new Counter({
      name: 'meshless_connections_closed_total',
      help: 'Connections finished, by direction and outcome (ok, refused, reset, timeout, denied, error)',
      labelNames: ['direction', 'outcome'],
      registers,
    });
    this.bytes = new Counter({
      name: 'meshless_bytes_total',
      help: 'Bytes proxied, by direction and way (sent: source to destination; received: back)',
      labelNames: ['direction', 'way'],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'meshless_hbone_handshake_failures_total',
      help: 'HBONE handshakes refused, by side (client, server) and reason',
      labelNames: ['side', 'reason'],
      registers,
    });
    this.streamsRefused = new Counter({
      name: 'meshless_hbone_streams_refused_total',
      help: 'Inbound HBONE streams not delivered, by reason (not-connect, bad-authority, forbidden-port, upstream-refused, cancelled, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.sessionErrors = new Counter({
      name: 'meshless_hbone_session_errors_total',
      help: 'Inbound HBONE sessions cut for an HTTP/2 flood or protocol violation, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.connectionFailures = new Counter({
      name: 'meshless_connection_failures_total',
      help: 'Connections that did not end cleanly, by direction and reason (the failure taxonomy: client-reset, upstream-reset, connect-refused, unreachable, peer-identity, http-status-503, limit-node, ...)',
      labelNames: ['direction', 'reason'],
      registers,
    });
    this.policyDenials = new Counter({
      name: 'meshless_policy_denials_total',
      help: 'Inbound connections denied by policy (and established ones a policy change closed), by direction and deciding policy (`Kind namespace/name`; `none`: no ALLOW policy matched)',
      labelNames: ['direction', 'policy'],
      registers,
    });
    this.limitRefusals = new Counter({
      name: 'meshless_connection_limit_refusals_total',
      help: 'Connections reset at accept because a limit was reached, by limit (pod-outbound, pod-inbound, node) and direction',
      labelNames: ['limit', 'direction'],
      registers,
    });
    this.bufferBudgetExhausted = new Counter({
      name: 'meshless_relay_buffer_budget_exhausted_total',
      help: 'Times the node-wide relay buffer budget (limits.relayBufferBytes) ran out (relays beyond their own 16 KiB then stop reading)',
      registers,
    });
    this.poolConnections = new Gauge({
      name: 'meshless_hbone_pool_connections',
      help: 'Open outbound HBONE connections in the pool',
      registers,
    });
    this.poolStreams = new Gauge({
      name: 'meshless_hbone_pool_streams',
      help: 'Open CONNECT streams on pooled HBONE connections',
      registers,
    });
    this.certificateExpiry = new Gauge({
      name: 'meshless_certificate_expiry_seconds',
      help: 'Seconds until each workload SVID (and the node CA) expires',
      labelNames: ['identity'],
      registers,
    });
    this.enrolledWorkloads = new Gauge({
      name: 'meshless_enrolled_workloads',
      help: 'Enrolled workloads on this node with their listeners bound',
      registers,
    });
    this.signerReachable = new Gauge({
      name: 'meshless_signer_reachable',
      help: 'Whether the last call to the cluster signer succeeded (1) or failed (0)',
      registers,
    });
    this.signerFailures = new Gauge({
      name: 'meshless_signer_consecutive_failures',
      help: 'Failed calls to the cluster signer since the last success',
      registers,
    });
    this.cniEvents = new Counter({
      name: 'meshless_cni_events_total',
      help: 'Registration API calls from the CNI plugin, by command and outcome',
      labelNames: ['command', 'outcome'],
      registers,
    });
    this.cniLatency = new Histogram({
      name: 'meshless_cni_event_duration_seconds',
      help: 'Time the daemon took to answer a CNI event',
      labelNames: ['command'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.dataPlaneWorkers = new Gauge({
      name: 'meshless_data_plane_workers',
      help: 'Data-plane worker threads configured',
      registers,
    });
    this.workerConnectionsOpened = new Counter({
      name: 'meshless_data_plane_worker_connections_opened_total',
      help: 'Connections accepted by each data-plane worker',
      labelNames: ['worker'],
      registers,
    });
    this.workerConnections = new Gauge({
      name: 'meshless_data_plane_worker_connections',
      help: 'Live proxied connections of each data-plane worker',
      labelNames: ['worker'],
      registers,
    });
    this.workerRestarts = new Counter({
      name: 'meshless_data_plane_worker_restarts_total',
      help: 'Data-plane workers that died and were replaced',
      labelNames: ['worker'],
      registers,
    });
  }

  /** Accounts one finished connection. */
  connection(r: ConnectionRecord): void {
    this.connectionsClosed.inc({ direction: r.direction, outcome: r.outcome });
    if (r.outcome === 'denied' && (r.reason === 'policy' || r.reason === 'unauthorized'))
      this.policyDenials.inc({ direction: r.direction, policy: r.policy ?? 'none' });
    if (r.outcome !== 'ok' && r.reason !== undefined)
      this.connectionFailures.inc({ direction: r.direction, reason: r.reason });
    this.bytes.inc({ direction: r.direction, way: 'sent' }, r.bytesSent);
    this.bytes.inc({ direction: r.direction, way: 'received' }, r.bytesReceived);
  }

  cniEvent(command: string, seconds: number, outcome: string): void {
    this.cniEvents.inc({ command, outcome });
    this.cniLatency.observe({ command }, seconds);
  }
}
