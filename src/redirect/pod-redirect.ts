/**
 * Installs, checks and removes the redirect rules inside one pod's network
 * namespace. The I/O shell around rules.ts and policy-routes.ts: it reads
 * the live state, renders the exact change, applies it atomically per
 * family (iptables-restore --noflush in one transaction).
 */
import { MeshlessError } from '../errors.js';
import { inNetns, type CommandRunner } from '../exec/command-runner.js';
import type { IpFamily } from './constants.js';
import { parseIptablesSave, type RulesetState } from './iptables-state.js';
import {
  inspectCommands,
  installBatch,
  installCommands,
  onlyAlreadyExists,
  removeCommands,
  verifyPolicyRoutes,
} from './policy-routes.js';
import { renderInstall, renderRemoval, verifyInstalled } from './rules.js';

const save = (f: IpFamily): string => (f === 4 ? 'iptables-save' : 'ip6tables-save');
const restore = (f: IpFamily): string => (f === 4 ? 'iptables-restore' : 'ip6tables-restore');

export class PodRedirect {
  readonly #runner: CommandRunner;

  constructor(runner: CommandRunner) {
    this.#runner = runner;
  }

  async #must(netns: string, argv: string[], what: string, input?: string): Promise<string> {
    const r = await this.#runner.run(inNetns(netns, argv), input);
    if (r.exitCode !== 0)
      throw new MeshlessError(
        'MESHLESS_E_REDIRECT',
        `${what} in netns ${netns} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`,
        { details: { netns, command: argv.join(' ') } },
      );
    return r.stdout;
  }

  async #ruleset(netns: string, family: IpFamily): Promise<RulesetState> {
    const text = await this.#must(netns, [save(family)], `${save(family)}`);
    return parseIptablesSave(text);
  }

  async #routes(netns: string, family: IpFamily): Promise<{ rules: string; routes: string }> {
    const cmds = inspectCommands(family);
    const [rules, routes] = await Promise.all([
      this.#must(netns, ['ip', ...cmds.rules], 'ip rule list'),
      this.#runner.run(inNetns(netns, ['ip', ...cmds.routes])),
    ]);
    // An empty routing table does not exist yet: that is "no routes".
    if (routes.exitCode !== 0 && !/table does not exist/i.test(routes.stderr))
      throw new MeshlessError(
        'MESHLESS_E_REDIRECT',
        `ip route show in netns ${netns} failed (exit ${routes.exitCode}): ${routes.stderr.trim()}`,
        { details: { netns } },
      );
    return { rules, routes: routes.exitCode === 0 ? routes.stdout : '' };
  }

  /**
   * Installs the rules for each family (idempotent). On the ADD path every
   * exec counts (it is pod start-up time): per family one iptables-save, then
   * the restore and one `ip -batch` for the policy rule and route, families
   * in parallel.
   */
  async install(netns: string, families: readonly IpFamily[]): Promise<void> {
    await Promise.all(
      families.map(async (family) => {
        const [current] = await Promise.all([
          this.#ruleset(netns, family),
          this.#policyRoutes(netns, family),
        ]);
        await this.#must(
          netns,
          [restore(family), '--noflush'],
          `${restore(family)} --noflush`,
          renderInstall(family, current),
        );
      }),
    );
  }

  /**
   * Like install, but inspects everything first and also trims doubled
   * jumps and policy rules (someone else's restore): the reconciliation path,
   * where thoroughness matters more than a few milliseconds.
   */
  async repair(netns: string, families: readonly IpFamily[]): Promise<void> {
    for (const family of families) {
      const [current, routes] = await Promise.all([
        this.#ruleset(netns, family),
        this.#routes(netns, family),
      ]);
      for (const args of installCommands(family, routes.rules, routes.routes))
        await this.#must(netns, ['ip', ...args], `ip ${args.slice(1).join(' ')}`);
      await this.#must(
        netns,
        [restore(family), '--noflush'],
        `${restore(family)} --noflush`,
        renderInstall(family, current),
      );
    }
  }

  async #policyRoutes(netns: string, family: IpFamily): Promise<void> {
    const r = await this.#runner.run(
      inNetns(netns, ['ip', `-${family}`, '-force', '-batch', '-']),
      installBatch(family),
    );
    if (r.exitCode !== 0 && !onlyAlreadyExists(r.stderr))
      throw new MeshlessError(
        'MESHLESS_E_REDIRECT',
        `ip -batch (policy rule and route) in netns ${netns} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
        { details: { netns } },
      );
  }

  /** Removes everything of ours for both families (idempotent). */
  async remove(netns: string): Promise<void> {
    await Promise.all(
      ([4, 6] as const).map(async (family) => {
        const [current, routes] = await Promise.all([
          this.#ruleset(netns, family),
          this.#routes(netns, family),
        ]);
        const text = renderRemoval(current);
        if (text !== undefined)
          await this.#must(netns, [restore(family), '--noflush'], `${restore(family)}`, text);
        for (const args of removeCommands(family, routes.rules, routes.routes))
          await this.#must(netns, ['ip', ...args], `ip ${args.slice(1).join(' ')}`);
      }),
    );
  }

  /** True when anything of ours (a chain, a jump, the policy rule or route) is in the netns. */
  async present(netns: string): Promise<boolean> {
    for (const family of [4, 6] as const) {
      const [current, routes] = await Promise.all([
        this.#ruleset(netns, family),
        this.#routes(netns, family),
      ]);
      if (renderRemoval(current) !== undefined) return true;
      if (removeCommands(family, routes.rules, routes.routes).length > 0) return true;
    }
    return false;
  }

  /** What is missing or wrong for the given families ([] when intact). */
  async verify(netns: string, families: readonly IpFamily[]): Promise<string[]> {
    const problems: string[] = [];
    for (const family of families) {
      const [current, routes] = await Promise.all([
        this.#ruleset(netns, family),
        this.#routes(netns, family),
      ]);
      problems.push(
        ...verifyInstalled(family, current).map((p) => `IPv${family} ${p}`),
        ...verifyPolicyRoutes(family, routes.rules, routes.routes),
      );
    }
    return problems;
  }
}
