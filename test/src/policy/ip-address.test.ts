import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockContains, parseIpAddress, parseIpBlock } from '../../../src/policy/ip-address.js';

describe('parseIpBlock / blockContains', () => {
  const cases: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.0.0.0/8', '::ffff:10.1.1.1', true],
    ['0.0.0.0/0', '1.2.3.4', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['::/0', '2001:db8::1', true],
    ['::/0', '1.2.3.4', false],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['2001:db8::1', '2001:db8::1', true],
    ['2001:db8::1', '2001:db8::2', false],
    ['fd00::/8', 'fdff:1:2:3:4:5:6:7', true],
    ['192.168.1.1', '192.168.1.1', true],
    ['192.168.1.0/31', '192.168.1.1', true],
    ['192.168.1.0/31', '192.168.1.2', false],
  ];
  for (const [block, address, expect] of cases)
    it(`${block} ${expect ? 'contains' : 'does not contain'} ${address}`, () => {
      const b = parseIpBlock(block) ?? assert.fail(block);
      const a = parseIpAddress(address) ?? assert.fail(address);
      assert.equal(blockContains(b, a), expect);
    });
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'x', '::/129', '10.0.0.0/'])
    it(`rejects ${bad}`, () => assert.equal(parseIpBlock(bad), undefined));
});
