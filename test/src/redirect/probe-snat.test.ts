/**
 * The node's probe SNAT rule (src/redirect/probe-snat.ts): goldens, run
 * twice against the iptables-restore model, re-rendering as pods come and
 * go, exact removal; and the applier against a fake node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult, CommandRunner } from '../../../src/exec/command-runner.js';
import { EMPTY_RULESET, parseIptablesSave } from '../../../src/redirect/iptables-state.js';
import { NodeProbeSnat } from '../../../src/redirect/node-probe-snat.js';
import {
  canonicalIp,
  probeSnatRules,
  renderProbeSnat,
  renderProbeSnatRemoval,
  verifyProbeSnat,
} from '../../../src/redirect/probe-snat.js';
import { assertGolden, readTestdata } from './golden.js';
import { applyRestore } from './restore-model.js';

const PODS = ['10.248.1.3', '10.248.1.2', 'fd00:248:1::0:2', '10.248.1.2'];
const foreign = (text: string): string[] =>
  text.split('\n').filter((l) => l.startsWith('-A ') && !l.includes('MESHLESS'));

describe('probe SNAT renderer', () => {
  it('golden: IPv4 and IPv6 on an empty node, then their removal', () => {
    const parts: string[] = [];
    for (const family of [4, 6] as const) {
      const text = renderProbeSnat(family, PODS, EMPTY_RULESET);
      parts.push(`### IPv${family} install`, text);
      parts.push(
        `### IPv${family} removal`,
        renderProbeSnatRemoval(parseIptablesSave(applyRestore('', text))) ?? '<undefined>',
      );
    }
    assertGolden('probe-snat-empty.golden', parts.join('\n'));
  });

  it('golden: a node with CNI and kube-proxy rules, a stale set and a doubled jump', () => {
    const start = readTestdata('node-nat.save');
    const text = renderProbeSnat(4, ['10.248.1.2'], parseIptablesSave(start));
    assertGolden('probe-snat-node.golden', text);
    const after = applyRestore(start, text);
    assert.deepEqual(verifyProbeSnat(4, ['10.248.1.2'], parseIptablesSave(after)), []);
    assert.deepEqual(foreign(after), foreign(applyRestore('', start)), 'foreign rules untouched');
  });

  it('run twice, pods come and go, then removal leaves only foreign rules', () => {
    const start = readTestdata('node-nat.save');
    let state = start;
    const render = (ips: string[]): void => {
      state = applyRestore(state, renderProbeSnat(4, ips, parseIptablesSave(state)));
      assert.deepEqual(verifyProbeSnat(4, ips, parseIptablesSave(state)), []);
    };
    render(['10.248.1.2']);
    const once = state;
    render(['10.248.1.2']);
    assert.equal(state, once, 'a second render changes nothing');
    render(['10.248.1.2', '10.248.1.5']);
    assert.match(state, /-d 10\.248\.1\.5\/32 /);
    render(['10.248.1.5']);
    assert.doesNotMatch(state, /-d 10\.248\.1\.2\/32 /, 'a released pod loses its rule');
    render([]);
    assert.deepEqual(parseIptablesSave(state).rulesOf('nat', 'MESHLESS_POSTRT'), []);
    const removed = applyRestore(state, renderProbeSnatRemoval(parseIptablesSave(state)) ?? '');
    assert.ok(!removed.includes('MESHLESS'), removed);
    assert.equal(renderProbeSnatRemoval(parseIptablesSave(removed)), undefined, 'idempotent');
    assert.deepEqual(foreign(removed), foreign(applyRestore('', start)));
  });

  it('one rule per address of the family, canonical and sorted', () => {
    assert.deepEqual(probeSnatRules(4, PODS), [
      '-d 10.248.1.2/32 -p tcp -m owner --socket-exists -j SNAT --to-source 169.254.7.127',
      '-d 10.248.1.3/32 -p tcp -m owner --socket-exists -j SNAT --to-source 169.254.7.127',
    ]);
    assert.deepEqual(probeSnatRules(6, PODS), [
      '-d fd00:248:1::2/128 -p tcp -m owner --socket-exists -j SNAT --to-source fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
    ]);
    assert.equal(canonicalIp(6, 'FD00:0248:0001:0000:0000:0000:0000:0002'), 'fd00:248:1::2');
    assert.equal(canonicalIp(4, 'fd00::1'), undefined);
    assert.equal(canonicalIp(6, '10.0.0.1'), undefined);
  });

  it('verify names what differs', () => {
    const state = parseIptablesSave(readTestdata('node-nat.save'));
    assert.deepEqual(verifyProbeSnat(4, ['10.248.1.2'], state), [
      'nat POSTROUTING: 2 jumps to MESHLESS_POSTRT, want 1',
      'nat MESHLESS_POSTRT: rules differ from the enrolled pods',
    ]);
    assert.deepEqual(verifyProbeSnat(4, [], EMPTY_RULESET), [
      'nat POSTROUTING: 0 jumps to MESHLESS_POSTRT, want 1',
      'nat MESHLESS_POSTRT: chain missing',
    ]);
  });
});

/** A node's nat tables kept through the restore model; records every command. */
class FakeNode implements CommandRunner {
  readonly log: string[] = [];
  readonly nat: Record<string, string> = { '4': '', '6': '' };

  async run(argv: readonly string[], input?: string): Promise<CommandResult> {
    await Promise.resolve();
    const [cmd = '', ...args] = argv;
    const family = cmd.startsWith('ip6') ? '6' : '4';
    this.log.push(`${cmd} ${args.join(' ')}`);
    if (cmd.endsWith('-save')) {
      assert.deepEqual(args, ['-t', 'nat']);
      return { exitCode: 0, stdout: this.nat[family] ?? '', stderr: '' };
    }
    assert.deepEqual(args, ['--noflush']);
    try {
      this.nat[family] = applyRestore(this.nat[family] ?? '', input ?? '');
    } catch (err) {
      return { exitCode: 2, stdout: '', stderr: String(err) };
    }
    return { exitCode: 0, stdout: '', stderr: '' };
  }
}

describe('NodeProbeSnat', () => {
  it('apply twice, verify, remove twice: exact, in the caller netns', async () => {
    const node = new FakeNode();
    const snat = new NodeProbeSnat(node, { kernelHasIpv6: true });
    await snat.apply(PODS);
    const once = { ...node.nat };
    await snat.apply(PODS);
    assert.deepEqual(node.nat, once);
    assert.deepEqual(await snat.verify(PODS), []);
    assert.equal(await snat.present(), true);
    await snat.remove();
    assert.equal(await snat.present(), false);
    await snat.remove();
    assert.ok(
      node.log.every((l) => !l.startsWith('nsenter')),
      'no nsenter without netnsPath',
    );
  });

  it('a kernel without IPv6: only iptables', async () => {
    const node = new FakeNode();
    await new NodeProbeSnat(node, { kernelHasIpv6: false }).apply(PODS);
    assert.ok(
      node.log.every((l) => l.startsWith('iptables')),
      node.log.join('\n'),
    );
  });

  it('a failing command rejects with MESHLESS_E_REDIRECT, naming it', async () => {
    const denied: CommandRunner = {
      run: () =>
        Promise.resolve({
          exitCode: 4,
          stdout: '',
          stderr: 'Permission denied (you must be root)',
        }),
    };
    await assert.rejects(
      new NodeProbeSnat(denied, { kernelHasIpv6: false }).apply([]),
      (err: unknown) => {
        const e = err as { code?: string; message?: string };
        assert.equal(e.code, 'MESHLESS_E_REDIRECT');
        assert.match(e.message ?? '', /iptables-save -t nat .*Permission denied/);
        return true;
      },
    );
  });
});
