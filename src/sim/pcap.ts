/**
 * Reads a classic pcap file (tcpdump -w) of Ethernet frames and extracts
 * TCP payloads per flow, to assert what crossed a link: a marker never
 * appears in plaintext, TLS handshakes and their negotiated version.
 */
import { readFileSync } from 'node:fs';
import { MeshlessError } from '../errors.js';

/** A captured TCP segment. */
export interface TcpSegment {
  readonly src: string;
  readonly dst: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly flags: number;
  readonly payload: Buffer;
}

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6(b: Buffer, o: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(o + i).toString(16));
  return parts.join(':');
}

/** The TCP segments of a classic pcap file (Ethernet or Linux cooked frames). */
export function readPcap(path: string): TcpSegment[] {
  const buf = readFileSync(path);
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d)
    throw new MeshlessError('MESHLESS_E_SIM', `${path} is not a pcap file`);
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20);
  const out: TcpSegment[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8);
    const frame = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    let p = 0;
    let etherType: number;
    if (linktype === 1) {
      // Ethernet
      etherType = frame.readUInt16BE(12);
      p = 14;
      if (etherType === 0x8100) {
        etherType = frame.readUInt16BE(16);
        p = 18;
      }
    } else if (linktype === 113) {
      // Linux cooked (SLL)
      etherType = frame.readUInt16BE(14);
      p = 16;
    } else continue;
    let src: string;
    let dst: string;
    let proto: number;
    let l4: number;
    let end: number;
    if (etherType === 0x0800) {
      const ihl = ((frame[p] ?? 0) & 0x0f) * 4;
      proto = frame[p + 9] ?? 0;
      src = ipv4(frame, p + 12);
      dst = ipv4(frame, p + 16);
      end = p + frame.readUInt16BE(p + 2);
      l4 = p + ihl;
    } else if (etherType === 0x86dd) {
      proto = frame[p + 6] ?? 0;
      src = ipv6(frame, p + 8);
      dst = ipv6(frame, p + 24);
      end = p + 40 + frame.readUInt16BE(p + 4);
      l4 = p + 40;
    } else continue;
    if (proto !== 6 || l4 + 20 > frame.length) continue;
    const dataOff = ((frame[l4 + 12] ?? 0) >> 4) * 4;
    out.push({
      src,
      dst,
      srcPort: frame.readUInt16BE(l4),
      dstPort: frame.readUInt16BE(l4 + 2),
      flags: frame[l4 + 13] ?? 0,
      payload: frame.subarray(l4 + dataOff, Math.min(end, frame.length)),
    });
  }
  return out;
}

/** True when `marker` appears in any captured TCP payload (or across two consecutive ones of a flow). */
export function payloadContains(segments: readonly TcpSegment[], marker: string): boolean {
  const needle = Buffer.from(marker);
  const lastByFlow = new Map<string, Buffer>();
  for (const s of segments) {
    const flow = `${s.src}:${s.srcPort}>${s.dst}:${s.dstPort}`;
    const joined = Buffer.concat([lastByFlow.get(flow) ?? Buffer.alloc(0), s.payload]);
    if (joined.includes(needle)) return true;
    lastByFlow.set(flow, s.payload.subarray(Math.max(0, s.payload.length - needle.length)));
  }
  return false;
}

/** What TLS handshakes a capture shows. */
export interface TlsHandshakeSeen {
  readonly clientHellos: number;
  /** Versions selected by ServerHellos (supported_versions, else legacy_version), e.g. 0x0304. */
  readonly serverVersions: number[];
  /** ALPN protocols offered in ClientHellos. */
  readonly alpn: string[];
}

/** Finds TLS ClientHello/ServerHello records at the start of segments on `port` flows. */
export function tlsHandshakes(segments: readonly TcpSegment[], port: number): TlsHandshakeSeen {
  let clientHellos = 0;
  const serverVersions: number[] = [];
  const alpn = new Set<string>();
  for (const s of segments) {
    if (s.srcPort !== port && s.dstPort !== port) continue;
    const b = s.payload;
    if (b.length < 9 || b[0] !== 0x16 || b[1] !== 0x03) continue;
    const hsType = b[5];
    // handshake header: type(1) len(3) version(2) random(32) sid_len(1)...
    let o = 9 + 2 + 32;
    if (o >= b.length) continue;
    o += 1 + (b[o] ?? 0); // session id
    if (hsType === 1) {
      clientHellos++;
      const suitesLen = b.readUInt16BE(o);
      o += 2 + suitesLen;
      o += 1 + (b[o] ?? 0); // compression
      const extEnd = o + 2 + b.readUInt16BE(o);
      o += 2;
      while (o + 4 <= Math.min(extEnd, b.length)) {
        const type = b.readUInt16BE(o);
        const len = b.readUInt16BE(o + 2);
        if (type === 16) {
          let p = o + 4 + 2;
          while (p < o + 4 + len) {
            const l = b[p] ?? 0;
            alpn.add(b.subarray(p + 1, p + 1 + l).toString());
            p += 1 + l;
          }
        }
        o += 4 + len;
      }
    } else if (hsType === 2) {
      let version = b.readUInt16BE(9);
      o += 2 + 1; // cipher suite + compression
      const extEnd = o + 2 + b.readUInt16BE(o);
      o += 2;
      while (o + 4 <= Math.min(extEnd, b.length)) {
        const type = b.readUInt16BE(o);
        const len = b.readUInt16BE(o + 2);
        if (type === 43 && len === 2) version = b.readUInt16BE(o + 4);
        o += 4 + len;
      }
      serverVersions.push(version);
    }
  }
  return { clientHellos, serverVersions, alpn: [...alpn] };
}
