import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseStatusReport } from '../../cli/admin-reports.js';
import { renderStatus } from '../../cli/commands/status.js';
import { NOW, adminAnswer } from './admin-fixtures.js';

const VIEW = { now: NOW, width: 80, color: false };

describe('meshless status', () => {
  it('renders a ready daemon', () => {
    assert.equal(
      renderStatus(parseStatusReport(adminAnswer('status')), VIEW, '0.1.0'),
      [
        'Node          node-a, meshless 0.1.0, up 2h05m',
        'Trust domain  cluster.local',
        'Ready         yes',
        'Discovery     kubernetes, synced: 12 namespaces, 140 pods, 152 addresses',
        'Workloads     4 registered, 3 enrolled, 2 proxied',
        'Identities    2 SVIDs',
        'HBONE pool    2 connections, 3 streams',
        'Connections   4 active',
        'Data plane    2 workers: #0 3 conn, 2 pods; #1 1 conn, 2 pods, 1 restart',
        '',
      ].join('\n'),
    );
  });

  it('says why a daemon is not ready, and when the CLI is another version', () => {
    assert.equal(
      renderStatus(parseStatusReport(adminAnswer('status-not-ready')), VIEW, '0.2.0'),
      [
        'Node          node-a, meshless 0.1.0 (this CLI: 0.2.0), up 12s',
        'Trust domain  cluster.local',
        'Ready         no',
        '              - discovery has not synced',
        '              - workload shop/db-0 has no listeners or identity yet',
        'Discovery     kubernetes, not synced yet: 0 namespaces, 0 pods, 0 addresses',
        'Workloads     1 registered, 1 enrolled, 0 proxied',
        'Identities    0 SVIDs',
        'HBONE pool    0 connections, 0 streams, 1 connecting',
        'Connections   0 active',
        '',
      ].join('\n'),
    );
  });

  it('colours readiness on a terminal only', () => {
    const report = parseStatusReport(adminAnswer('status-not-ready'));
    const coloured = renderStatus(report, { ...VIEW, color: true }, undefined);
    assert.ok(coloured.includes('Ready         \x1b[31mno\x1b[39m\n'), coloured);
    assert.ok(coloured.includes('\x1b[33mkubernetes, not synced yet'), coloured);
    assert.ok(!renderStatus(report, VIEW, undefined).includes('\x1b'));
  });
});
