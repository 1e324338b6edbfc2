// `meshless policy check`: the daemon's answer computed by the production
// checkPolicy from a fixture cluster, parsed and rendered as the CLI does,
// against golden files (UPDATE_GOLDEN=1 rewrites them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyCheckReport, renderPolicyCheck } from '../../cli/commands/policy.js';
import { parseClusterDocument } from '../../src/discovery/file-source.js';
import { checkPolicy } from '../../src/policy/policy-check.js';
import { buildPolicyIndex } from '../../src/policy/policy-index.js';
import { testdata } from '../support/golden.js';

const data = testdata(new URL('./testdata/policy', import.meta.url));
const snapshot = parseClusterDocument(data.read('cluster.yaml'), 'cluster.yaml');
const index = buildPolicyIndex(snapshot);
const ENROLLED = new Set(['shop', 'pay']);
const check = (from: string, to: string) =>
  checkPolicy(
    snapshot,
    index,
    { from, to },
    {
      trustDomain: 'cluster.local',
      enforceNetworkPolicy: true,
      enrolled: (pod) => ENROLLED.has(pod.namespace),
    },
  );
const VIEW = { now: 0, width: 100, color: false };

describe('meshless policy check', () => {
  const cases: [string, string, string, boolean][] = [
    ['allowed', 'shop/web-0', 'shop/db-0:pg', true],
    ['denied-by-deny-policy', 'pay/gateway-0', 'shop/db-0:5432', false],
    ['denied-no-allow-match', 'shop/web-0', 'shop/db-0:9187', false],
    ['denied-strict', 'legacy/batch-0', 'shop/web-0:8080', false],
    ['identity', 'shop/sa/web', 'shop/db-0:5432', false],
    ['address', '10.244.3.4', 'pay/gateway-0:80', true],
  ];
  for (const [name, from, to, allowed] of cases)
    it(`${name}: ${from} -> ${to}`, () => {
      const answer: unknown = JSON.parse(JSON.stringify(check(from, to)));
      const report = parsePolicyCheckReport(answer);
      assert.equal(report.allowed, allowed);
      data.assertGolden(`${name}.txt`, renderPolicyCheck(report, VIEW));
    });

  it('an identity alone passes authorization but matches no pod selector of a NetworkPolicy', () => {
    const r = check('shop/sa/web', 'shop/db-0:5432');
    assert.deepEqual([r.authorization.allowed, r.networkPolicy.allowed], [true, false]);
  });

  it('rejects a query it cannot resolve, naming the part', () => {
    assert.throws(() => check('shop/nope', 'shop/db-0:5432'), /--from: no pod shop\/nope/);
    assert.throws(
      () => check('shop/web-0', 'shop/db-0'),
      /--to "shop\/db-0" is not namespace\/pod:port/,
    );
    assert.throws(
      () => check('shop/web-0', 'shop/db-0:grpc'),
      /"grpc" is neither a port nor a named port/,
    );
    assert.throws(() => check('a/b/c/d', 'shop/db-0:5432'), /--from "a\/b\/c\/d" is neither/);
  });

  it('a garbled answer names the field', () => {
    const answer = JSON.parse(JSON.stringify(check('shop/web-0', 'shop/db-0:pg'))) as {
      authorization: { mtls: unknown };
    };
    answer.authorization.mtls = 'x';
    assert.throws(() => parsePolicyCheckReport(answer), /authorization\.mtls\.mode/);
  });
});
