/**
 * IP addresses and CIDR blocks as numbers, so that matching an address
 * against a policy's blocks is arithmetic on an address parsed once per
 * connection (no string parsing, no allocation per comparison).
 *
 * Invariant: an IPv4 address and an IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`) are the same address (a dual-stack socket reports the
 * latter); an IPv4 block never contains an IPv6 address, and an IPv6 block
 * (even `::/0`) never contains an IPv4 one, as Kubernetes' ipBlock defines.
 */
import { isIP } from 'node:net';

/** An address: four 32-bit words, IPv4 in the last one. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  /** As written (for explanations). */
  readonly text: string;
}

/** A CIDR block (a bare address is a /32 or /128). */
export interface IpBlock {
  readonly family: 4 | 6;
  /** The prefix in bits of the 128-bit form (IPv4: 96 + prefix). */
  readonly bits: number;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly text: string;
}

function ipv4Word(text: string): number {
  const parts = text.split('.');
  let v = 0;
  for (const p of parts) v = v * 256 + Number(p);
  return v >>> 0;
}

/** Parses an address; undefined when it is not one. */
export function parseIpAddress(text: string): IpAddress | undefined {
  const family = isIP(text);
  if (family === 4) return { family: 4, w0: 0, w1: 0, w2: 0xffff, w3: ipv4Word(text), text };
  if (family !== 6) return undefined;
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  let groups: number[];
  const lastColon = bare.lastIndexOf(':');
  let tailV4: number | undefined;
  let head = bare;
  if (bare.includes('.')) {
    tailV4 = ipv4Word(bare.slice(lastColon + 1));
    head = `${bare.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.indexOf('::');
  if (dbl >= 0) {
    const left = head.slice(0, dbl) === '' ? [] : head.slice(0, dbl).split(':');
    const right = head.slice(dbl + 2) === '' ? [] : head.slice(dbl + 2).split(':');
    const fill = new Array<string>(8 - left.length - right.length).fill('0');
    groups = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  } else groups = head.split(':').map((g) => parseInt(g, 16));
  const g = (i: number): number => groups[i] ?? 0;
  const w3 = tailV4 ?? ((g(6) << 16) | g(7)) >>> 0;
  const w0 = ((g(0) << 16) | g(1)) >>> 0;
  const w1 = ((g(2) << 16) | g(3)) >>> 0;
  const w2 = ((g(4) << 16) | g(5)) >>> 0;
  // An IPv4-mapped address is the IPv4 address.
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return { family: 4, w0, w1, w2, w3, text };
  return { family: 6, w0, w1, w2, w3, text };
}

const maskWord = (bits: number): number =>
  bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (~0 << (32 - bits)) >>> 0;

/** Parses `a.b.c.d/n`, `v6/n` or a bare address; undefined when malformed. */
export function parseIpBlock(text: string): IpBlock | undefined {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIpAddress(addrText);
  if (addr === undefined || addrText.includes('%')) return undefined;
  const written = isIP(addrText) === 4 ? 4 : 6;
  const max = written === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  const bits = written === 4 ? 96 + prefix : prefix;
  const m = (i: number): number => maskWord(bits - 32 * i);
  return {
    family: addr.family,
    bits,
    w0: (addr.w0 & m(0)) >>> 0,
    w1: (addr.w1 & m(1)) >>> 0,
    w2: (addr.w2 & m(2)) >>> 0,
    w3: (addr.w3 & m(3)) >>> 0,
    text,
  };
}

/** Whether `block` contains `ip`. */
export function blockContains(block: IpBlock, ip: IpAddress): boolean {
  const b = block.bits;
  return (
    block.family === ip.family &&
    (ip.w0 & maskWord(b)) >>> 0 === block.w0 &&
    (ip.w1 & maskWord(b - 32)) >>> 0 === block.w1 &&
    (ip.w2 & maskWord(b - 64)) >>> 0 === block.w2 &&
    (ip.w3 & maskWord(b - 96)) >>> 0 === block.w3
  );
}
