// A hostile HTTP/2 peer for tests: raw frames over TLS, written by hand so
// that a test can send what Node's own client refuses to (invalid
// pseudo-headers, floods of RST_STREAM, SETTINGS and PING frames).
import type net from 'node:net';
import tls from 'node:tls';

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One HTTP/2 frame. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with an `n`-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, n: number, first = 0): Buffer {
  const max = 2 ** n - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([hpackInt(b.length, 7), b]);
}

/** A header block of literal fields without indexing, new names (no Huffman, no table). */
export function headerBlock(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(
    headers.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]),
  );
}

/** A HEADERS frame with END_HEADERS (and END_STREAM when `end`). */
export function headersFrame(
  streamId: number,
  headers: readonly (readonly [string, string])[],
  end = false,
): Buffer {
  return frame(FRAME.HEADERS, 0x4 | (end ? 0x1 : 0), streamId, headerBlock(headers));
}

export function rstFrame(streamId: number, code = 8): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export function settingsFrame(settings: readonly (readonly [number, number])[] = []): Buffer {
  const p = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function pingFrame(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n >>> 0, 4);
  return frame(FRAME.PING, 0, 0, p);
}

/** What a raw peer saw from the server. */
export interface RawPeerView {
  /** Frames received, by type. */
  readonly frames: Map<number, number>;
  /** Error code of the first GOAWAY, if any. */
  goawayCode: number | undefined;
  /** Streams the server reset, with their codes. */
  readonly resets: Map<number, number>;
  /** The connection closed. */
  closed: boolean;
}

/** A raw HTTP/2 client over a TLS connection presenting `cert`/`key`. */
export interface RawH2 {
  readonly socket: tls.TLSSocket;
  readonly view: RawPeerView;
  write(b: Buffer): boolean;
  /** Resolves when the server ended or closed the connection (or after `ms`, with false). */
  closed(ms: number): Promise<boolean>;
}

/** Connects, completes TLS (ALPN h2) and sends the preface and an empty SETTINGS. */
export function connectRawH2(
  socket: net.Socket,
  cert: string,
  key: string,
  initialSettings: Buffer = settingsFrame(),
): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({
      socket,
      cert,
      key,
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
    });
    const view: RawPeerView = {
      frames: new Map(),
      goawayCode: undefined,
      resets: new Map(),
      closed: false,
    };
    let buf = Buffer.alloc(0);
    t.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3] ?? -1;
        // Acknowledge the server's SETTINGS, as a real client would.
        if (type === FRAME.SETTINGS && ((buf[4] ?? 0) & 0x1) === 0 && !t.destroyed) {
          t.write(frame(FRAME.SETTINGS, 0x1, 0, Buffer.alloc(0)));
          settled();
        }
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        view.frames.set(type, (view.frames.get(type) ?? 0) + 1);
        if (type === FRAME.GOAWAY && view.goawayCode === undefined && payload.length >= 8)
          view.goawayCode = payload.readUInt32BE(4);
        if (type === FRAME.RST_STREAM && payload.length >= 4)
          view.resets.set(stream, payload.readUInt32BE(0));
        buf = buf.subarray(9 + len);
      }
    });
    t.on('error', () => undefined);
    // The server ending its side is enough: the raw socket may stay half-open.
    const closedP = new Promise<void>((r) => {
      const done = (): void => {
        view.closed = true;
        r();
      };
      t.once('end', done);
      t.once('close', done);
    });
    let settled = (): void => undefined;
    t.once('secureConnect', () => {
      t.write(Buffer.concat([PREFACE, initialSettings]));
      // Ready once the server's SETTINGS arrived and were acknowledged.
      settled = () =>
        resolve({
          socket: t,
          view,
          write: (b) => (t.destroyed ? false : t.write(b)),
          closed: (ms) =>
            Promise.race([
              closedP.then(() => true),
              new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
            ]),
        });
    });
    const early = (): void => reject(new Error('closed before the HTTP/2 preface exchange'));
    t.once('end', early);
    t.once('close', early);
  });
}
