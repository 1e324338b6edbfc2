/**
 * ProbeSnatService: the node's probe SNAT set follows enrolment, renders
 * one at a time and coalesced, stays quiet until the start-up sync, and
 * never fails an enrolment. Driven over the real NodeProbeSnat with a
 * runner that keeps the node's nat table through the restore model.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult, CommandRunner } from '../../../src/exec/command-runner.js';
import type { Logger } from '../../../src/logger.js';
import { parseIptablesSave } from '../../../src/redirect/iptables-state.js';
import { NodeProbeSnat } from '../../../src/redirect/node-probe-snat.js';
import { ProbeSnatService } from '../../../daemon/probes/probe-snat-service.js';
import type { Registration } from '../../../daemon/registration/registry.js';
import { applyRestore } from '../../src/redirect/restore-model.js';

class FakeNode implements CommandRunner {
  nat = '';
  restores = 0;
  fail = false;
  async run(argv: readonly string[], input?: string): Promise<CommandResult> {
    await new Promise((r) => setTimeout(r, 2));
    if (argv[0] === 'iptables-save') return { exitCode: 0, stdout: this.nat, stderr: '' };
    if (this.fail) return { exitCode: 1, stdout: '', stderr: 'xtables lock busy' };
    this.restores++;
    this.nat = applyRestore(this.nat, input ?? '');
    return { exitCode: 0, stdout: '', stderr: '' };
  }
  /** The pod addresses our chain SNATs now. */
  covered(): string[] {
    return (parseIptablesSave(this.nat).rulesOf('nat', 'MESHLESS_POSTRT') ?? []).map(
      (r) => /-d ([^/]+)\//.exec(r)?.[1] ?? '?',
    );
  }
}

/** Both families' nat tables, each restore counted per family. */
class DualStackNode implements CommandRunner {
  readonly nat = { 4: '', 6: '' };
  readonly restores = { 4: 0, 6: 0 };
  async run(argv: readonly string[], input?: string): Promise<CommandResult> {
    await new Promise((r) => setTimeout(r, 2));
    const family = argv[0]?.startsWith('ip6') ? 6 : 4;
    if (argv[0]?.endsWith('-save')) return { exitCode: 0, stdout: this.nat[family], stderr: '' };
    this.restores[family]++;
    this.nat[family] = applyRestore(this.nat[family], input ?? '');
    return { exitCode: 0, stdout: '', stderr: '' };
  }
}

const reg = (id: string, ip: string): Registration => ({
  containerId: id,
  ifname: 'eth0',
  netns: `/var/run/netns/${id}`,
  network: 'k8s',
  namespace: 'secure',
  podName: id,
  podUid: undefined,
  addresses: [{ family: 4, ip }],
  enrolled: true,
  reason: 'namespace label',
  serviceAccount: 'default',
  registeredAt: new Date(0).toISOString(),
});

function recordingLogger(): { log: Logger; errors: string[] } {
  const errors: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (_fields, msg) => void errors.push(msg),
    child: () => log,
  };
  return { log, errors };
}

describe('ProbeSnatService', () => {
  it('records during re-attach, renders once at sync, then follows enrol and release', async () => {
    const node = new FakeNode();
    const { log } = recordingLogger();
    const svc = new ProbeSnatService(new NodeProbeSnat(node, { kernelHasIpv6: false }), log);
    await svc.workloadEnrolled(reg('a', '10.0.0.2'));
    await svc.workloadEnrolled(reg('b', '10.0.0.3'));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(node.restores, 0, 'nothing before the start-up sync');
    await svc.sync();
    assert.equal(node.restores, 1);
    assert.deepEqual(node.covered(), ['10.0.0.2', '10.0.0.3']);

    await svc.workloadReleased(reg('a', '10.0.0.2'));
    await svc.workloadEnrolled(reg('c', '10.0.0.4'));
    await svc.workloadEnrolled(reg('d', '10.0.0.5'));
    await svc.settled();
    assert.deepEqual(node.covered(), ['10.0.0.3', '10.0.0.4', '10.0.0.5']);
    assert.ok(node.restores <= 3, `coalesced: ${node.restores} renders for 3 changes`);

    await svc.workloadReleased(reg('zz', '10.0.0.9')); // never enrolled: no render
    const before = node.restores;
    await svc.settled();
    assert.equal(node.restores, before);

    // Reconciliation confirms enrolled pods after every discovery change:
    // the same addresses render nothing; a changed address renders.
    await svc.workloadEnrolled(reg('c', '10.0.0.4'));
    await svc.settled();
    assert.equal(node.restores, before, 'an unchanged enrolment renders nothing');
    await svc.workloadEnrolled(reg('c', '10.0.0.6'));
    await svc.settled();
    assert.equal(node.restores, before + 1);
    assert.deepEqual(node.covered(), ['10.0.0.3', '10.0.0.5', '10.0.0.6']);
  });

  it('an enrolment never waits for nor fails on the rule; a failure is logged and the next change repairs', async () => {
    const node = new FakeNode();
    const { log, errors } = recordingLogger();
    const svc = new ProbeSnatService(new NodeProbeSnat(node, { kernelHasIpv6: false }), log);
    await svc.sync();
    node.fail = true;
    await svc.workloadEnrolled(reg('a', '10.0.0.2'));
    await svc.settled();
    assert.equal(errors.length, 1);
    assert.deepEqual(node.covered(), []);
    node.fail = false;
    await svc.workloadEnrolled(reg('b', '10.0.0.3'));
    await svc.settled();
    assert.deepEqual(node.covered(), ['10.0.0.2', '10.0.0.3']);
  });

  it('renders only the family whose addresses changed; start-up and repair render both', async () => {
    const node = new DualStackNode();
    const { log } = recordingLogger();
    const svc = new ProbeSnatService(new NodeProbeSnat(node, { kernelHasIpv6: true }), log);
    await svc.workloadEnrolled(reg('a', '10.0.0.2'));
    await svc.sync();
    assert.deepEqual(node.restores, { 4: 1, 6: 1 });
    await svc.workloadEnrolled(reg('b', '10.0.0.3'));
    await svc.settled();
    assert.deepEqual(node.restores, { 4: 2, 6: 1 }, 'an IPv4 pod leaves IPv6 alone');
    await svc.workloadEnrolled(reg('c', 'fd00::4'));
    await svc.settled();
    assert.deepEqual(node.restores, { 4: 2, 6: 2 });
    node.nat[4] = applyRestore(node.nat[4], '*nat\n-F MESHLESS_POSTRT\nCOMMIT\n');
    assert.equal(await svc.repair(), true);
    assert.deepEqual(node.restores, { 4: 3, 6: 3 });
    assert.equal(await svc.repair(), false);
  });

  it('repair() renders again when the node rules were flushed, and does nothing when intact', async () => {
    const node = new FakeNode();
    const { log } = recordingLogger();
    const svc = new ProbeSnatService(new NodeProbeSnat(node, { kernelHasIpv6: false }), log);
    await svc.workloadEnrolled(reg('a', '10.0.0.2'));
    assert.equal(await svc.repair(), false, 'not live before the start-up sync');
    await svc.sync();
    assert.equal(await svc.repair(), false);
    node.nat = applyRestore(node.nat, '*nat\n-F MESHLESS_POSTRT\nCOMMIT\n');
    assert.deepEqual(node.covered(), []);
    assert.equal(await svc.repair(), true);
    assert.deepEqual(node.covered(), ['10.0.0.2']);
  });
});
