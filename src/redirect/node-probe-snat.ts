/**
 * Applies, checks and removes the node's probe SNAT rule (probe-snat.ts)
 * in the node's own network namespace (the daemon runs with hostNetwork), or
 * in the netns at `netnsPath` when given (the simulated nodes' CLI, tests).
 * Per family one `iptables-save -t nat` and one `iptables-restore --noflush`,
 * each commit atomic; IPv6 only where the kernel has it.
 */
import { existsSync } from 'node:fs';
import { MeshlessError } from '../errors.js';
import { inNetns, type CommandRunner } from '../exec/command-runner.js';
import type { IpFamily } from './constants.js';
import { parseIptablesSave, type RulesetState } from './iptables-state.js';
import { renderProbeSnat, renderProbeSnatRemoval, verifyProbeSnat } from './probe-snat.js';

export interface NodeProbeSnatOptions {
  /** The node's netns file; absent: the caller's own netns. */
  readonly netnsPath?: string;
  /** Whether the kernel has IPv6 (default: /proc/sys/net/ipv6 exists). */
  readonly kernelHasIpv6?: boolean;
}

export class NodeProbeSnat {
  readonly #runner: CommandRunner;
  readonly #netns: string | undefined;
  readonly #families: readonly IpFamily[];

  constructor(runner: CommandRunner, options: NodeProbeSnatOptions = {}) {
    this.#runner = runner;
    this.#netns = options.netnsPath;
    const v6 = options.kernelHasIpv6 ?? existsSync('/proc/sys/net/ipv6');
    this.#families = v6 ? [4, 6] : [4];
  }

  async #must(argv: string[], input?: string): Promise<string> {
    const full = this.#netns === undefined ? argv : inNetns(this.#netns, argv);
    const r = await this.#runner.run(full, input);
    if (r.exitCode !== 0)
      throw new MeshlessError(
        'MESHLESS_E_REDIRECT',
        `${argv.join(' ')} on the node failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`,
        { details: { command: argv.join(' ') } },
      );
    return r.stdout;
  }

  async #nat(family: IpFamily): Promise<RulesetState> {
    const save = family === 4 ? 'iptables-save' : 'ip6tables-save';
    return parseIptablesSave(await this.#must([save, '-t', 'nat']));
  }

  #restore(family: IpFamily, text: string): Promise<string> {
    return this.#must([family === 4 ? 'iptables-restore' : 'ip6tables-restore', '--noflush'], text);
  }

  /**
   * Makes the rules exactly those for `podIps` (idempotent; families in
   * parallel), in every family the kernel has or only in `only` of them.
   */
  async apply(podIps: readonly string[], only?: readonly IpFamily[]): Promise<void> {
    await Promise.all(
      this.#families
        .filter((f) => only === undefined || only.includes(f))
        .map(async (family) =>
          this.#restore(family, renderProbeSnat(family, podIps, await this.#nat(family))),
        ),
    );
  }

  /** Removes the jump and the chain, both families (idempotent). */
  async remove(): Promise<void> {
    await Promise.all(
      this.#families.map(async (family) => {
        const text = renderProbeSnatRemoval(await this.#nat(family));
        if (text !== undefined) await this.#restore(family, text);
      }),
    );
  }

  /** True when a jump or chain of ours is there. */
  async present(): Promise<boolean> {
    for (const family of this.#families)
      if (renderProbeSnatRemoval(await this.#nat(family)) !== undefined) return true;
    return false;
  }

  /** What differs from exactly the rules for `podIps` ([] when in place). */
  async verify(podIps: readonly string[]): Promise<string[]> {
    const problems: string[] = [];
    for (const family of this.#families)
      problems.push(
        ...verifyProbeSnat(family, podIps, await this.#nat(family)).map((p) => `IPv${family} ${p}`),
      );
    return problems;
  }
}
