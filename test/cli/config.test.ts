import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfigReport } from '../../cli/admin-reports.js';
import { renderConfig } from '../../cli/commands/config.js';
import { adminAnswer } from './admin-fixtures.js';

describe('meshless config', () => {
  it('prints the effective config as YAML, in the daemon order', () => {
    const raw = adminAnswer('config');
    const text = renderConfig(parseConfigReport(raw));
    assert.deepEqual(parse(text), raw);
    assert.ok(
      text.startsWith(
        [
          'nodeName: node-a',
          'trustDomain: cluster.local',
          'stateDir: /var/run/meshless',
          'cniSocket: /var/run/meshless/cni.sock',
          'discovery:',
          '  source: kubernetes',
          'enrolmentLabel: io.cilium/mtls-enabled=true',
          'excludeNamespaces:',
          '  - kube-system',
          '',
        ].join('\n'),
      ),
      text,
    );
    assert.match(text, /\nmetricsAddress: :15020\n/);
  });
});
