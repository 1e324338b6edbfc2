import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConnectionsReport, parseNodeInfo } from '../../cli/admin-reports.js';
import { renderConnections } from '../../cli/commands/connections.js';
import { NOW, adminAnswer } from './admin-fixtures.js';

const NODE = parseNodeInfo(adminAnswer('status'));
const CONNECTIONS = parseConnectionsReport(adminAnswer('connections'));

describe('meshless connections', () => {
  it('renders one row per connection when that fits', () => {
    assert.equal(
      renderConnections(NODE, CONNECTIONS, { now: NOW, width: 160, color: false }),
      [
        'POD                       DIRECTION          SOURCE                                      DESTINATION                      AGE',
        'shop/db-0                 inbound            [fd00:10:244:2::7]:51000 ns/pay/sa/gateway  10.244.1.6:5432 ns/shop/sa/db    3h00m',
        'shop/db-0                 inbound-plaintext  10.244.3.4:40000                            10.244.1.6:5432 ns/shop/sa/db    30s',
        'shop/web-7d9c5b6f4-x2x9p  outbound           10.244.1.5:43210 ns/shop/sa/web             10.244.2.7:8080 ns/shop/sa/cart  3m12s',
        'shop/web-7d9c5b6f4-x2x9p  passthrough        10.244.1.5:43222                            10.96.0.10:53                    2s',
        '',
      ].join('\n'),
    );
  });

  it('on 80 columns, puts the destination under the source', () => {
    const text = renderConnections(NODE, CONNECTIONS, { now: NOW, width: 80, color: false });
    assert.equal(
      text,
      [
        'POD               DIRECTION          AGE    SOURCE -> DESTINATION',
        'shop/db-0         inbound            3h00m  [fd00:10:244:2::7]…ns/pay/sa/gateway',
        '                                            -> 10.244.1.6:5432 ns/shop/sa/db',
        'shop/db-0         inbound-plaintext  30s    10.244.3.4:40000',
        '                                            -> 10.244.1.6:5432 ns/shop/sa/db',
        'shop/web…4-x2x9p  outbound           3m12s  10.244.1.5:43210 ns/shop/sa/web',
        '                                            -> 10.244.2.7:8080 ns/shop/sa/cart',
        'shop/web…4-x2x9p  passthrough        2s     10.244.1.5:43222',
        '                                            -> 10.96.0.10:53',
        '',
      ].join('\n'),
    );
    for (const line of text.split('\n')) assert.ok(line.length <= 80, line);
  });

  it('says so when nothing is proxied', () => {
    assert.equal(
      renderConnections(NODE, [], { now: NOW, width: 80, color: false }),
      'No active connections on node node-a.\n',
    );
  });
});
