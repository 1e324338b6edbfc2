/**
 * The rule applier (src/redirect/pod-redirect.ts) against a fake netns: a
 * runner that keeps each family's iptables state (through the restore
 * model) and policy rules and routes, and records every command. Checks
 * the install/remove round trip, run twice, and what the ADD path relies
 * on: a prepared install only reads, and writes nothing before apply().
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CommandResult, CommandRunner } from '../../../src/exec/command-runner.js';
import { PodRedirect } from '../../../src/redirect/pod-redirect.js';
import { applyRestore } from './restore-model.js';

const NETNS = '/var/run/netns/pod';
const RULE_LINE = '32764:\tfrom all fwmark 0x111/0xfff lookup 100';
const ROUTE_LINE = 'local default dev lo scope host ';

class FakeNetns implements CommandRunner {
  readonly log: string[] = [];
  readonly save: Record<string, string> = { '4': '', '6': '' };
  readonly rules: Record<string, number> = { '4': 0, '6': 0 };
  readonly routes: Record<string, boolean> = { '4': false, '6': false };
  failSave = false;

  async run(argv: readonly string[], input?: string): Promise<CommandResult> {
    await Promise.resolve();
    assert.deepEqual(argv.slice(0, 3), ['nsenter', `--net=${NETNS}`, '--']);
    const [cmd = '', ...args] = argv.slice(3);
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
    const family = cmd.startsWith('ip6') ? '6' : cmd === 'ip' ? (args[0]?.slice(1) ?? '') : '4';
    if (cmd.endsWith('-save')) {
      this.log.push(`save${family}`);
      if (this.failSave) return { exitCode: 1, stdout: '', stderr: 'Permission denied' };
      return ok(this.save[family]);
    }
    if (cmd.endsWith('-restore')) {
      this.log.push(`restore${family}`);
      try {
        this.save[family] = applyRestore(this.save[family] ?? '', input ?? '');
      } catch (err) {
        // All or nothing, like the real tool.
        return { exitCode: 2, stdout: '', stderr: String(err) };
      }
      return ok();
    }
    assert.equal(cmd, 'ip');
    const lines = (input ?? '').trim().split('\n');
    const stdout: string[] = [];
    const errors: string[] = [];
    for (const line of lines) {
      this.log.push(`ip${family} ${line.split(' ').slice(0, 2).join(' ')}`);
      if (line.startsWith('rule list'))
        for (let i = 0; i < (this.rules[family] ?? 0); i++) stdout.push(RULE_LINE);
      else if (line.startsWith('route show')) {
        if (this.routes[family]) stdout.push(ROUTE_LINE);
      } else if (line.startsWith('rule add')) {
        if ((this.rules[family] ?? 0) > 0) errors.push('RTNETLINK answers: File exists');
        else this.rules[family] = 1;
      } else if (line.startsWith('rule del')) this.rules[family] = (this.rules[family] ?? 1) - 1;
      else if (line.startsWith('route replace')) this.routes[family] = true;
      else if (line.startsWith('route del')) this.routes[family] = false;
      else throw new Error(`unexpected ip batch line ${line}`);
    }
    return {
      exitCode: errors.length > 0 ? 1 : 0,
      stdout: stdout.map((l) => l + '\n').join(''),
      stderr: errors.join('\n'),
    };
  }
}

describe('PodRedirect', () => {
  it('install twice, verify, remove twice: one copy, intact, then nothing of ours', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns);
    await r.install(NETNS, [4, 6]);
    const once = { ...ns.save };
    await r.install(NETNS, [4, 6]);
    assert.deepEqual(ns.save, once);
    assert.deepEqual(await r.verify(NETNS, [4, 6]), []);
    assert.deepEqual(ns.rules, { '4': 1, '6': 1 });
    assert.equal(await r.present(NETNS), true);
    await r.remove(NETNS);
    assert.equal(await r.present(NETNS), false);
    assert.deepEqual(ns.rules, { '4': 0, '6': 0 });
    assert.deepEqual(ns.routes, { '4': false, '6': false });
    ns.log.length = 0;
    await r.remove(NETNS);
    // Nothing of ours: the blind removal fails, the save says there is nothing.
    assert.deepEqual(ns.log.sort(), [
      'ip4 route show',
      'ip4 rule list',
      'ip6 route show',
      'ip6 rule list',
      'restore4',
      'restore6',
      'save4',
      'save6',
    ]);
  });

  it('remove after one install: the blind removal does it, in one restore per family', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns, { kernelHasIpv6: true });
    await r.install(NETNS, [4]);
    ns.log.length = 0;
    await r.remove(NETNS, [4]);
    assert.equal(await r.present(NETNS), false);
    assert.deepEqual(
      ns.log.filter((l) => l.startsWith('restore')).sort(),
      ['restore4', 'restore6'],
      'IPv4 redirect and IPv6 refuse, each removed by its blind restore',
    );
  });

  it('an IPv4-only pod: IPv4 redirected, IPv6 refused (no policy routing), CHECK sees tampering, DEL removes both', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns, { kernelHasIpv6: true });
    await r.install(NETNS, [4]);
    const once = { ...ns.save };
    await r.install(NETNS, [4]);
    assert.deepEqual(ns.save, once, 'run twice: one copy');
    assert.match(ns.save['6'] ?? '', /-A MESHLESS_OUTPUT .*-j REJECT --reject-with tcp-reset/);
    assert.doesNotMatch(ns.save['6'] ?? '', /REDIRECT/);
    assert.deepEqual(ns.rules, { '4': 1, '6': 0 });
    assert.deepEqual(ns.routes, { '4': true, '6': false });
    assert.deepEqual(await r.verify(NETNS, [4]), []);

    ns.save['6'] = applyRestore(ns.save['6'] ?? '', '*filter\n-F MESHLESS_INPUT\nCOMMIT\n');
    assert.deepEqual(await r.verify(NETNS, [4]), [
      'IPv6 filter MESHLESS_INPUT: rules differ from what meshless installs',
    ]);
    await r.repair(NETNS, [4]);
    assert.deepEqual(await r.verify(NETNS, [4]), []);
    assert.deepEqual(ns.save, once, 'repair restores exactly the install');

    await r.remove(NETNS, [4]);
    assert.equal(await r.present(NETNS), false);
    assert.ok(!(ns.save['6'] ?? '').includes('MESHLESS'));
    assert.deepEqual(ns.routes, { '4': false, '6': false });
  });

  it('DEL without prevResult (both families expected redirected) still removes a refuse install', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns, { kernelHasIpv6: true });
    await r.install(NETNS, [4]);
    await r.remove(NETNS);
    assert.equal(await r.present(NETNS), false);
  });

  it('a kernel without IPv6: an IPv4-only pod gets no IPv6 rules', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns, { kernelHasIpv6: false });
    await r.install(NETNS, [4]);
    assert.deepEqual(ns.save['6'], '');
    assert.deepEqual(await r.verify(NETNS, [4]), []);
  });

  it('remove of a doubled install: the blind removal fails whole, the read one removes all', async () => {
    const ns = new FakeNetns();
    const r = new PodRedirect(ns);
    await r.install(NETNS, [4]);
    // Someone else's restore doubled the jumps.
    ns.save['4'] = applyRestore(
      ns.save['4'] ?? '',
      '*mangle\n-A PREROUTING -j MESHLESS_PRERT\nCOMMIT\n*nat\n-A OUTPUT -j MESHLESS_OUTPUT\nCOMMIT\n',
    );
    await r.remove(NETNS, [4]);
    assert.equal(await r.present(NETNS), false);
    assert.ok(!(ns.save['4'] ?? '').includes('MESHLESS'));
  });

  it('a prepared install reads on the next turn, and writes nothing until apply()', async () => {
    const ns = new FakeNetns();
    const prepared = new PodRedirect(ns, { kernelHasIpv6: true }).prepareInstall(NETNS, [4]);
    assert.deepEqual(ns.log, [], 'nothing runs in the same turn');
    // The reads start on a later turn; how much later depends on the machine's load.
    for (let i = 0; i < 200 && ns.log.length < 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(ns.log, ['save4', 'save6']);
    await prepared.apply();
    assert.deepEqual(ns.log.slice(2).sort(), [
      'ip4 route replace',
      'ip4 rule add',
      'restore4',
      'restore6',
    ]);
    assert.doesNotMatch(ns.save['6'] ?? '', /nat|mangle/);
  });

  it('a failed read surfaces at apply(), and an unapplied one is silent', async () => {
    const ns = new FakeNetns();
    ns.failSave = true;
    const r = new PodRedirect(ns);
    r.prepareInstall(NETNS, [4, 6]); // never applied: no unhandled rejection
    await assert.rejects(r.prepareInstall(NETNS, [4]).apply(), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'MESHLESS_E_REDIRECT');
      return true;
    });
    assert.ok(!ns.log.some((l) => l.startsWith('restore') || l.includes('add')));
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});
