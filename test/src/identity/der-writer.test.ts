import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  element,
  namedBits,
  oid,
  smallInteger,
  time,
  unsignedInteger,
} from '../../../src/identity/der-writer.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('der-writer', () => {
  const cases: readonly [string, () => Buffer, string][] = [
    ['OID 2.5.29.17 (subjectAltName)', () => oid('2.5.29.17'), '0603551d11'],
    ['OID with multi-octet arcs', () => oid('1.2.840.113549.1.1.11'), '06092a864886f70d01010b'],
    ['OID ecdsa-with-SHA256', () => oid('1.2.840.10045.4.3.2'), '06082a8648ce3d040302'],
    ['INTEGER 0', () => smallInteger(0), '020100'],
    ['INTEGER 2', () => smallInteger(2), '020102'],
    ['INTEGER 256', () => smallInteger(256), '02020100'],
    [
      'INTEGER with the top bit set gets a 00 octet',
      () => unsignedInteger(Buffer.of(0x80)),
      '02020080',
    ],
    ['INTEGER leading zeros trimmed', () => unsignedInteger(Buffer.of(0, 0, 0x7f)), '02017f'],
    ['keyUsage digitalSignature', () => namedBits(1), '03020780'],
    ['keyUsage keyCertSign', () => namedBits(32), '03020204'],
    ['keyUsage keyCertSign|cRLSign', () => namedBits(96), '03020106'],
    ['keyUsage every bit (decipherOnly is bit 8)', () => namedBits(0x1ff), '030307ff80'],
    ['keyUsage none', () => namedBits(0), '030100'],
    [
      'long form length (200 octets)',
      () => element(0x04, Buffer.alloc(200)).subarray(0, 3),
      '0481c8',
    ],
    [
      'long form length (300 octets)',
      () => element(0x04, Buffer.alloc(300)).subarray(0, 4),
      '0482012c',
    ],
    [
      'UTCTime through 2049',
      () => time(Date.UTC(2049, 11, 31, 23, 59, 59, 999)),
      '170d3439313233313233353935395a',
    ],
    [
      'GeneralizedTime from 2050',
      () => time(Date.UTC(2050, 0, 1)),
      '180f32303530303130313030303030305a',
    ],
  ];
  for (const [name, encode, expected] of cases)
    it(`encodes ${name}`, () => assert.equal(hex(encode()), expected));
});
