/**
 * A minimal DER encoder: exactly the ASN.1 types an X.509 certificate of
 * ours is made of. Every function returns the complete element (tag, length,
 * content). Pure; no validation beyond what DER itself requires.
 */

/** Tags used by the certificate builder. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element with a raw tag octet and its content. */
export function element(tag: number, ...content: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.of(tag), lengthOctets(body.length), body]);
}

export function sequence(...items: readonly Uint8Array[]): Buffer {
  return element(TAG.sequence, ...items);
}

export function set(...items: readonly Uint8Array[]): Buffer {
  return element(TAG.set, ...items);
}

/** `[n] EXPLICIT`: a constructed context-specific element wrapping `inner`. */
export function explicit(n: number, inner: Uint8Array): Buffer {
  return element(0xa0 | n, inner);
}

/** `[n] IMPLICIT` of a primitive type: a primitive context-specific element. */
export function implicitPrimitive(n: number, content: Uint8Array): Buffer {
  return element(0x80 | n, content);
}

/** An OBJECT IDENTIFIER from its dotted form, e.g. `2.5.29.17`. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const base128: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128))
      base128.unshift((n & 0x7f) | 0x80);
    out.push(...base128);
  }
  return element(TAG.oid, Buffer.from(out));
}

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, sign octet added). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = Buffer.from(magnitude.subarray(start));
  if (bytes.length === 0) return element(TAG.integer, Buffer.of(0));
  return element(TAG.integer, (bytes[0] as number) & 0x80 ? Buffer.of(0) : Buffer.alloc(0), bytes);
}

export function smallInteger(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return unsignedInteger(Buffer.from(bytes));
}

export function boolean(value: boolean): Buffer {
  return element(TAG.boolean, Buffer.of(value ? 0xff : 0x00));
}

export function octetString(content: Uint8Array): Buffer {
  return element(TAG.octetString, content);
}

/** A BIT STRING of whole octets (no unused bits): signatures, key bits. */
export function bitString(content: Uint8Array, unusedBits = 0): Buffer {
  return element(TAG.bitString, Buffer.of(unusedBits), content);
}

/**
 * A named-bit BIT STRING (RFC 5280 keyUsage) from flags where bit i of the
 * string is `1 << i`, with trailing zero bits removed as DER requires.
 */
export function namedBits(flags: number): Buffer {
  if (flags === 0) return bitString(Buffer.alloc(0));
  const highest = 31 - Math.clz32(flags);
  const octets = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (let i = 0; i <= highest; i++)
    if (flags & (1 << i)) octets[i >> 3] = (octets[i >> 3] as number) | (0x80 >> (i & 7));
  return bitString(octets, octets.length * 8 - (highest + 1));
}

export function utf8String(value: string): Buffer {
  return element(TAG.utf8String, Buffer.from(value, 'utf8'));
}

export const NULL: Buffer = Buffer.of(TAG.null, 0);

/**
 * An X.509 Time (RFC 5280 §4.1.2.5): UTCTime through 2049, GeneralizedTime
 * from 2050; whole seconds (the fraction is dropped), always `Z`.
 */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest =
    two(d.getUTCMonth() + 1) +
    two(d.getUTCDate()) +
    two(d.getUTCHours()) +
    two(d.getUTCMinutes()) +
    two(d.getUTCSeconds()) +
    'Z';
  if (year >= 1950 && year < 2050)
    return element(TAG.utcTime, Buffer.from(two(year % 100) + rest, 'latin1'));
  return element(TAG.generalizedTime, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}
