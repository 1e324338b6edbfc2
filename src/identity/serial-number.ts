/**
 * Certificate serial numbers: random, positive, at least 64 bits of entropy
 * (CA/Browser Forum baseline; RFC 5280 allows up to 20 octets).
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';

/** Source of random bytes; injected in tests. */
export type RandomBytes = (size: number) => Buffer;

/** Octets in a serial number: 16, so 126 random bits once the top two are fixed. */
export const SERIAL_NUMBER_BYTES = 16;

/**
 * A fresh serial number as lowercase hex, 16 octets. The top bit is cleared
 * (DER INTEGERs are signed; a set top bit would make it negative) and the
 * next one set, so the value is positive, never has a leading zero octet to
 * be trimmed, and always encodes to exactly 16 octets.
 */
export function randomSerialNumber(randomBytes: RandomBytes = nodeRandomBytes): string {
  const bytes = Buffer.from(randomBytes(SERIAL_NUMBER_BYTES));
  if (bytes.length !== SERIAL_NUMBER_BYTES) {
    throw new RangeError(
      `randomBytes returned ${bytes.length} bytes, wanted ${SERIAL_NUMBER_BYTES}`,
    );
  }
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}
