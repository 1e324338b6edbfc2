/**
 * Passthrough: an enrolled pod's connection to a destination that is not
 * enrolled (or outside the cluster) leaves in plaintext, untouched, from
 * inside the pod (marked so the pod's rules let it out). The application
 * socket stays held until the upstream connected; a failed connect resets it.
 */
import type { Socket } from 'node:net';
import type { ManagedConnection } from './connection-manager.js';
import type { Endpoint } from './outbound-decision.js';
import { holdUntil, type PodSide } from './pod-side.js';

export function passThrough(
  side: PodSide,
  conn: ManagedConnection,
  app: Socket,
  dst: Endpoint,
): void {
  conn.reclassify('passthrough');
  holdUntil(conn, app, side.connectFromPod(dst));
}
