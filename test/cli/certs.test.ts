import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { relativeTime, renderCertsTable } from '../../cli/commands/certs.js';
import { parseCertsReport, type CertsReport } from '../../src/identity/certs-report.js';

const NOW = Date.parse('2030-01-15T12:00:00.000Z');

const REPORT: CertsReport = {
  trustDomain: 'cluster.local',
  nodeName: 'node-a',
  generatedAt: '2030-01-15T12:00:00.000Z',
  trustBundle: [
    {
      subject: 'O=meshless, CN=meshless root cluster.local',
      serialNumber: '5a01',
      notBefore: '2030-01-01T00:00:00.000Z',
      notAfter: '2040-01-01T00:00:00.000Z',
      fingerprintSha256: 'AA:BB',
      pem: '-----BEGIN CERTIFICATE-----\n...\n',
    },
  ],
  nodeCa: {
    subject: 'O=meshless, CN=meshless node node-a',
    serialNumber: '6b02',
    notBefore: '2030-01-15T11:55:00.000Z',
    notAfter: '2030-01-16T12:00:00.000Z',
    fingerprintSha256: 'CC:DD',
    pem: '-----BEGIN CERTIFICATE-----\n...\n',
    nextRotation: '2030-01-16T00:00:00.000Z',
  },
  identities: [
    {
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/web',
      workloads: 2,
      serialNumber: '7c03',
      notBefore: '2030-01-15T11:59:00.000Z',
      notAfter: '2030-01-15T13:00:00.000Z',
      nextRotation: '2030-01-15T12:29:00.000Z',
      rotationFailures: 0,
      chainPem: ['leaf', 'ca'],
    },
    {
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/db',
      workloads: 1,
      serialNumber: '7d04',
      notBefore: '2030-01-15T11:00:00.000Z',
      notAfter: '2030-01-15T12:30:00.000Z',
      nextRotation: '2030-01-15T11:58:00.000Z',
      rotationFailures: 3,
      chainPem: ['leaf', 'ca'],
    },
  ],
};

describe('meshless certs', () => {
  it('renders the bundle, node CA and identities as tables', () => {
    assert.equal(
      renderCertsTable(REPORT, NOW),
      [
        'Trust domain cluster.local on node node-a',
        '',
        'CERTIFICATE  SERIAL  NOT AFTER             NEXT ROTATION                     SUBJECT',
        'root         5a01    2040-01-01 00:00:00Z  -                                 O=meshless, CN=meshless root cluster.local',
        'node CA      6b02    2030-01-16 12:00:00Z  2030-01-16 00:00:00Z (in 12h00m)  O=meshless, CN=meshless node node-a',
        '',
        'IDENTITY                               WORKLOADS  SERIAL  NOT BEFORE            NOT AFTER             NEXT ROTATION',
        'spiffe://cluster.local/ns/shop/sa/web  2          7c03    2030-01-15 11:59:00Z  2030-01-15 13:00:00Z  2030-01-15 12:29:00Z (in 29m)',
        'spiffe://cluster.local/ns/shop/sa/db   1          7d04    2030-01-15 11:00:00Z  2030-01-15 12:30:00Z  2030-01-15 11:58:00Z (2m ago) [3 failed]',
        '',
      ].join('\n'),
    );
  });

  it('says so when the node holds no identity', () => {
    assert.match(renderCertsTable({ ...REPORT, identities: [] }, NOW), /No workload identities/);
  });

  const times: readonly [string, string][] = [
    ['2030-01-15T12:29:00.000Z', 'in 29m'],
    ['2030-01-15T15:05:00.000Z', 'in 3h05m'],
    ['2030-01-20T12:00:00.000Z', 'in 5d'],
    ['2030-01-15T11:48:00.000Z', '12m ago'],
  ];
  for (const [iso, text] of times) {
    it(`relative time ${iso} -> ${text}`, () => assert.equal(relativeTime(iso, NOW), text));
  }

  const broken: readonly [string, unknown, RegExp][] = [
    ['not an object', [], /report should be an object/],
    [
      'a missing identity field',
      { ...REPORT, identities: [{ ...REPORT.identities[0], serialNumber: 1 }] },
      /report\.identities\[0\]\.serialNumber should be a string/,
    ],
    ['a missing node CA', { ...REPORT, nodeCa: undefined }, /report\.nodeCa should be an object/],
  ];
  for (const [name, value, message] of broken) {
    it(`refuses a report with ${name}`, () => {
      assert.throws(
        () => parseCertsReport(value),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'MESHLESS_E_ADMIN_RESPONSE');
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
