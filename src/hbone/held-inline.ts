/**
 * The outbound "held inline" rule (docs/reference/behaviour.md): the application's connection
 * is accepted at once, but its bytes stay in the kernel and in Node's
 * buffer until the HBONE tunnel answered 200; only then does the relay
 * start. If the tunnel fails, the application's connection is reset: it
 * never falls back to plaintext and no byte leaves.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { errorMessage } from '../errors.js';
import type { ConnectionOutcome } from './connection-record.js';
import { HboneError } from './hbone-error.js';
import { relay, resetStream, type RelayOptions } from './relay.js';

/** The end of a held-inline connection. Never rejects. */
export interface TunnelProxyResult {
  readonly outcome: ConnectionOutcome;
  /** Bytes from the application into the tunnel. */
  readonly bytesSent: number;
  /** Bytes from the tunnel to the application. */
  readonly bytesReceived: number;
  /** Stable cause when not `ok` (the {@link HboneError} reason for tunnel failures). */
  readonly reason?: string;
  readonly error?: Error;
}

/** The record outcome of a failed tunnel, from its {@link HboneError} reason. */
export function outcomeOfTunnelError(err: unknown): ConnectionOutcome {
  if (!(err instanceof HboneError)) return 'error';
  switch (err.reason) {
    case 'connect-timeout':
    case 'response-timeout':
      return 'timeout';
    case 'connect-failed':
    case 'http-status-503':
      return 'refused';
    case 'peer-identity':
    case 'http-status-401':
      return 'denied';
    case 'reset':
    case 'session-closed':
    case 'goaway':
      return 'reset';
    default:
      return 'error';
  }
}

/**
 * Holds `app` (paused now, if the caller has not already) until `tunnel`
 * settles, then relays both ways; on a tunnel failure resets `app`. If the
 * application goes away while the tunnel is being opened, the tunnel is
 * closed as soon as it arrives. `app` should be `allowHalfOpen: true`.
 */
export async function proxyOverTunnel(
  app: net.Socket,
  tunnel: Promise<Duplex>,
  options?: RelayOptions,
): Promise<TunnelProxyResult> {
  app.pause();
  // Until the relay owns it, an error on the held socket is only a reason to reset later.
  const onHeldError = (): void => undefined;
  app.on('error', onHeldError);
  let stream: Duplex;
  try {
    stream = await tunnel;
  } catch (err) {
    resetStream(app);
    return {
      outcome: outcomeOfTunnelError(err),
      bytesSent: 0,
      bytesReceived: 0,
      reason: err instanceof HboneError ? err.reason : errorMessage(err),
      ...(err instanceof Error ? { error: err } : {}),
    };
  } finally {
    app.removeListener('error', onHeldError);
  }
  if (app.destroyed) {
    resetStream(stream);
    return { outcome: 'reset', bytesSent: 0, bytesReceived: 0, reason: 'client-closed' };
  }
  const result = await relay(app, stream, options);
  return {
    outcome: result.outcome,
    bytesSent: result.bytesAtoB,
    bytesReceived: result.bytesBtoA,
    ...(result.outcome === 'ok'
      ? {}
      : { reason: result.failedSide === 'a' ? 'reset-by-client' : 'reset-by-tunnel' }),
    ...(result.error === undefined ? {} : { error: result.error }),
  };
}
