/**
 * The byte pump between two duplex streams: application socket and HBONE
 * stream (outbound), HBONE stream and application socket (inbound), or two
 * TCP sockets (plaintext passthrough).
 *
 * Semantics:
 * - Half-close propagates: when one side's readable ends (FIN, END_STREAM),
 *   the other side's writable is ended once everything before it was
 *   written; the opposite direction keeps flowing. TCP sockets given to the
 *   relay must therefore be `allowHalfOpen: true`, or Node ends them itself.
 * - A reset propagates: when one side errors or closes without having
 *   ended both ways, the other is reset: a TCP socket with RST
 *   (`resetAndDestroy`), an HTTP/2 stream with RST_STREAM CONNECT_ERROR
 *   (RFC 9113 §8.5), anything else destroyed.
 * - Backpressure with a larger buffer than Node's 16 KiB default: a source
 *   is paused only once its destination holds `highWaterMark` bytes, and
 *   resumed on `'drain'`. With a node-wide {@link BufferBudget}, bytes
 *   beyond the destination's own 16 KiB are charged to it, and while it is
 *   spent every relay that holds such bytes stops reading (the kernel's
 *   buffers and TCP windows then hold the senders back); a relay within its
 *   own 16 KiB keeps going, so receivers that stall cannot stop the others.
 *   HTTP/2 streams cannot be created with another highWaterMark, so the
 *   relay applies its own (docs/performance.md).
 * - Write coalescing: the first chunk of an event-loop turn is written at
 *   once; if more arrive in the same turn, the destination is corked and
 *   uncorked on `setImmediate`, so they leave in one writev() (docs/performance.md:
 *   +70 % once windows are large). Writing the first chunk at once keeps
 *   request/response traffic (one chunk per turn) off the extra loop turn:
 *   corking every chunk added ~60 us to a pod-to-pod round trip.
 * - Only `'data'` listeners are used, never pipe(): mixing both on an
 *   HTTP/2 stream loses data. Sources paused by hand (held-inline
 *   application sockets) are resumed explicitly.
 */
import net from 'node:net';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { BufferBudget } from './buffer-budget.js';

/** How a relay ended: `ok` both directions ended cleanly; `reset` one side reset or errored. */
export type RelayOutcome = 'ok' | 'reset';

/** Which side of a relay. */
export type RelaySide = 'a' | 'b';

/** The result of {@link relay}; it never rejects. */
export interface RelayResult {
  /** Bytes read from `a` and written to `b`. */
  readonly bytesAtoB: number;
  /** Bytes read from `b` and written to `a`. */
  readonly bytesBtoA: number;
  readonly outcome: RelayOutcome;
  /** The side that reset or failed first, when the outcome is `reset`. */
  readonly failedSide?: RelaySide;
  /** Its error, if it emitted one (a plain close without FIN has none). */
  readonly error?: Error;
}

/** Options of {@link relay}. */
export interface RelayOptions {
  /** Bytes buffered in a destination before its source is paused; default 4 MiB. */
  readonly highWaterMark?: number;
  /** Cork/uncork once per event-loop turn; default true. */
  readonly coalesceWrites?: boolean;
  /** The node-wide buffer budget; when spent, the relay stops reading. */
  readonly budget?: BufferBudget;
}

/** Default per-direction buffer of a relay (docs/performance.md: 4 MiB). */
export const RELAY_HIGH_WATER_MARK = 4 * 1024 * 1024;

interface Http2StreamLike extends Duplex {
  readonly rstCode: number | undefined;
  close(code?: number): void;
}

function isHttp2Stream(stream: Duplex): stream is Http2StreamLike {
  return 'rstCode' in stream && 'session' in stream && 'close' in stream;
}

/**
 * Aborts a stream so its peer learns the connection failed: RST for a TCP
 * socket, RST_STREAM CONNECT_ERROR for an HTTP/2 stream, destroy otherwise.
 * Idempotent.
 */
export function resetStream(stream: Duplex): void {
  if (stream.destroyed) return;
  if (isHttp2Stream(stream)) {
    // close(code) ends the writable first when it is still open, and the
    // END_STREAM goes out before the RST_STREAM: the peer would see a clean
    // end (and pass on a FIN) before the reset. Marking the writable as
    // ending makes close() send the RST_STREAM alone.
    const state = (stream as { _writableState?: { ending: boolean } })._writableState;
    if (state && !state.ending) state.ending = true;
    stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
    return;
  }
  if (stream instanceof net.Socket && !(stream instanceof tls.TLSSocket)) {
    if (stream.writableEnded && !stream.writableFinished) {
      // A FIN is being sent: libuv refuses the RST (EINVAL) and Node then
      // drops the handle unclosed (no 'close', the descriptor leaks).
      stream.destroy();
      return;
    }
    try {
      stream.resetAndDestroy();
      return;
    } catch {
      // No TCP handle (e.g. a socket adopted from another handle type): plain destroy.
    }
  }
  stream.destroy();
}

/** True when `stream` has ended both ways on its own (no reset, no error). */
function closedCleanly(stream: Duplex): boolean {
  if (stream.errored) return false;
  if (isHttp2Stream(stream)) {
    // Node emits 'close' on an HTTP/2 stream before 'finish' even when both
    // END_STREAMs went through: a stream closed with NO_ERROR after end()
    // and after its readable ended has finished cleanly.
    return (
      (stream.rstCode ?? 0) === http2.constants.NGHTTP2_NO_ERROR &&
      stream.readableEnded &&
      stream.writableEnded
    );
  }
  return stream.readableEnded && stream.writableFinished;
}

/**
 * Copies bytes both ways between `a` and `b` until both have closed.
 * Resolves with byte counts and the outcome; never rejects. Both streams
 * are closed (ended or reset) when it resolves.
 */
export function relay(a: Duplex, b: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  const highWaterMark = options.highWaterMark ?? RELAY_HIGH_WATER_MARK;
  const coalesce = options.coalesceWrites ?? true;
  const budget = options.budget;
  return new Promise((resolve) => {
    let bytesAtoB = 0;
    let bytesBtoA = 0;
    let failedSide: RelaySide | undefined;
    let failure: Error | undefined;
    let aClosed = a.destroyed;
    let bClosed = b.destroyed;
    let settled = false;

    const finish = (): void => {
      if (settled || !aClosed || !bClosed) return;
      settled = true;
      resolve({
        bytesAtoB,
        bytesBtoA,
        outcome: failedSide === undefined ? 'ok' : 'reset',
        ...(failedSide === undefined ? {} : { failedSide }),
        ...(failure === undefined ? {} : { error: failure }),
      });
    };

    const fail = (side: RelaySide, err: Error | undefined): void => {
      if (failedSide === undefined) {
        failedSide = side;
        failure = err;
      }
      resetStream(a);
      resetStream(b);
    };

    /** One direction: `src` -> `dst`; returns the byte-count adder's owner. */
    const pump = (src: Duplex, dst: Duplex, count: (n: number) => void): void => {
      let corked = false;
      /** A chunk was already written in this event-loop turn. */
      let inTurn = false;
      const uncork = (): void => {
        corked = false;
        if (!dst.destroyed) dst.uncork();
      };
      const endTurn = (): void => {
        inTurn = false;
        if (corked) uncork();
      };
      /** Bytes of `dst`'s buffer charged to the budget (only beyond its own highWaterMark). */
      let charged = 0;
      let paused = false;
      let cancelWait: (() => void) | undefined;
      const tryResume = (): void => {
        cancelWait = undefined;
        if (!paused || src.destroyed || dst.destroyed) return;
        if (dst.writableLength >= highWaterMark) return; // 'drain' resumes
        if (budget?.spent && charged > 0) {
          cancelWait = budget.wait(tryResume);
          return;
        }
        paused = false;
        src.resume();
      };
      dst.on('drain', () => {
        budget?.release(charged);
        charged = 0;
        tryResume();
      });
      const settle = (): void => {
        cancelWait?.();
        cancelWait = undefined;
        budget?.release(charged);
        charged = 0;
      };
      dst.once('close', settle);
      src.once('close', settle);
      src.on('data', (chunk: Buffer) => {
        if (dst.destroyed || dst.writableEnded) return;
        count(chunk.length);
        if (coalesce) {
          if (!inTurn) {
            inTurn = true;
            setImmediate(endTurn);
          } else if (!corked) {
            corked = true;
            dst.cork();
          }
        }
        // Bytes under dst's own highWaterMark are Node's ordinary buffering;
        // beyond it (write() false, so 'drain' will come) they are charged.
        if (!dst.write(chunk) && budget) {
          // The buffer may have shrunk since the last charge: settle the difference.
          const delta = dst.writableLength - charged;
          if (delta > 0) budget.charge(delta);
          else budget.release(-delta);
          charged = dst.writableLength;
        }
        // A spent budget stops only relays that hold bytes beyond their own
        // 16 KiB: the ones that need it. Everyone keeps that share, so
        // stalled receivers that spent the budget cannot stop the others.
        if (
          !paused &&
          (dst.writableLength >= highWaterMark || (budget?.spent === true && charged > 0))
        ) {
          paused = true;
          src.pause();
          if (dst.writableLength < highWaterMark) cancelWait ??= budget?.wait(tryResume);
        }
      });
      src.once('end', () => {
        if (corked) uncork();
        if (!dst.destroyed && !dst.writableEnded) dst.end();
      });
      src.resume();
    };

    const watch = (stream: Duplex, side: RelaySide): void => {
      stream.on('error', (err: Error) => fail(side, err));
      stream.once('close', () => {
        if (side === 'a') aClosed = true;
        else bClosed = true;
        if (!closedCleanly(stream) && failedSide === undefined)
          fail(side, stream.errored ?? undefined);
        finish();
      });
    };

    watch(a, 'a');
    watch(b, 'b');
    if (a.destroyed || b.destroyed) {
      fail(a.destroyed ? 'a' : 'b', undefined);
      finish();
      return;
    }
    pump(a, b, (n) => (bytesAtoB += n));
    pump(b, a, (n) => (bytesBtoA += n));
  });
}
