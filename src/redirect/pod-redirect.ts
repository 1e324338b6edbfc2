/**
 * Installs, checks and removes the redirect rules inside one pod's network
 * namespace. The I/O shell around rules.ts and policy-routes.ts: it reads
 * the live state, renders the exact change, applies it atomically per
 * family (iptables-restore --noflush in one transaction).
 *
 * Callers name the address families the pod has; every family gets rules
 * (rules.ts `familyPlan`): those the pod has addresses of are redirected,
 * the others (IPv6 link-local in an IPv4-only pod) refuse TCP. The policy
 * routing exists only for redirected families.
 */
import { existsSync } from 'node:fs';
import { MeshlessError } from '../errors.js';
import { inNetns, type CommandRunner } from '../exec/command-runner.js';
import type { IpFamily } from './constants.js';
import { parseIptablesSave, type RulesetState } from './iptables-state.js';
import {
  batchOf,
  inspectBatch,
  installBatch,
  installCommands,
  onlyAlreadyExists,
  removeCommands,
  verifyPolicyRoutes,
} from './policy-routes.js';
import {
  familyPlan,
  renderInstall,
  renderRemoval,
  renderRemovalOfInstall,
  verifyInstalled,
  type FamilyRules,
} from './rules.js';

const save = (f: IpFamily): string => (f === 4 ? 'iptables-save' : 'ip6tables-save');
const restore = (f: IpFamily): string => (f === 4 ? 'iptables-restore' : 'ip6tables-restore');

/** An install whose reads have started (see {@link PodRedirect.prepareInstall}). */
export interface PreparedInstall {
  /** Installs the rules; rejects with MESHLESS_E_REDIRECT (a failed read included). */
  apply(): Promise<void>;
}

export interface PodRedirectOptions {
  /** Whether the kernel has IPv6 (default: /proc/sys/net/ipv6 exists); without it nothing to refuse. */
  readonly kernelHasIpv6?: boolean;
}

export class PodRedirect {
  readonly #runner: CommandRunner;
  readonly #ipv6: boolean;

  constructor(runner: CommandRunner, options: PodRedirectOptions = {}) {
    this.#runner = runner;
    this.#ipv6 = options.kernelHasIpv6 ?? existsSync('/proc/sys/net/ipv6');
  }

  /** The rules of every family, given the families the pod has addresses of. */
  plan(addressFamilies: readonly IpFamily[]): FamilyRules[] {
    return familyPlan(addressFamilies, this.#ipv6);
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
    const r = await this.#runner.run(
      inNetns(netns, ['ip', `-${family}`, '-force', '-batch', '-']),
      inspectBatch(family),
    );
    // An empty routing table may not exist yet: that is "no routes".
    const failures = r.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('Command failed'));
    if (r.exitCode !== 0 && !failures.every((l) => /table does not exist/i.test(l)))
      throw new MeshlessError(
        'MESHLESS_E_REDIRECT',
        `ip rule list / route show in netns ${netns} failed (exit ${r.exitCode}): ${r.stderr.trim()}`,
        { details: { netns } },
      );
    // One listing holds both; each parser ignores the other's lines (inspectBatch).
    return { rules: r.stdout, routes: r.stdout };
  }

  /**
   * Starts an install: the reads (one iptables-save per family) begin on
   * the next turn of the event loop, so a request sent just before goes out
   * first, and run while the caller waits for the go-ahead. `apply()`
   * installs the rules (idempotent) once they are done: per family the
   * iptables-restore and one `ip -batch` for the policy rule and route, in
   * parallel, families in parallel. On the ADD path every exec counts (it is
   * pod start-up time): the plugin reads while the daemon binds the pod's
   * listeners, and writes only after (rules never before listeners).
   * A prepared install that is never applied has only read.
   */
  prepareInstall(netns: string, families: readonly IpFamily[]): PreparedInstall {
    const plan = this.plan(families);
    const reads = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
      plan.map(({ family }) => {
        const state = this.#ruleset(netns, family);
        state.catch(() => undefined); // reported by apply(), if it runs
        return state;
      }),
    );
    return {
      apply: async () => {
        const states = await reads;
        await Promise.all(
          plan.map(async ({ family, mode }, i) => {
            const current = await states[i];
            if (current === undefined) return;
            await Promise.all([
              mode === 'redirect' ? this.#policyRoutes(netns, family) : undefined,
              this.#must(
                netns,
                [restore(family), '--noflush'],
                `${restore(family)} --noflush`,
                renderInstall(family, current, mode),
              ),
            ]);
          }),
        );
      },
    };
  }

  /** Installs the rules of every family (idempotent); see {@link prepareInstall}. */
  install(netns: string, families: readonly IpFamily[]): Promise<void> {
    return this.prepareInstall(netns, families).apply();
  }

  /**
   * Like install, but inspects everything first and also trims doubled
   * jumps and policy rules (someone else's restore): the reconciliation path,
   * where thoroughness matters more than a few milliseconds.
   */
  async repair(netns: string, families: readonly IpFamily[]): Promise<void> {
    for (const { family, mode } of this.plan(families)) {
      const current = await this.#ruleset(netns, family);
      if (mode === 'redirect') {
        const routes = await this.#routes(netns, family);
        for (const args of installCommands(family, routes.rules, routes.routes))
          await this.#must(netns, ['ip', ...args], `ip ${args.slice(1).join(' ')}`);
      }
      await this.#must(
        netns,
        [restore(family), '--noflush'],
        `${restore(family)} --noflush`,
        renderInstall(family, current, mode),
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

  /**
   * Removes everything of ours from both families (idempotent); `families`
   * (the pod's address families, as given to install; default both) only
   * says which rule set to expect in each. Per family, two independent
   * chains run in parallel, families in parallel:
   * - iptables: the restore that removes exactly one install of the
   *   expected rule set is tried at once, beside an iptables-save; it either
   *   commits whole or changes nothing, and then the removal is rendered
   *   from the save (a netns without our rules, doubled jumps, the other
   *   rule set). Reading first would put the save before the restore, whose
   *   commit waits ~20 ms on the kernel.
   * - policy routing: one `ip -batch` listing, then one deleting.
   */
  async remove(netns: string, families: readonly IpFamily[] = [4, 6]): Promise<void> {
    const modes = new Map(this.plan(families).map((p) => [p.family, p.mode]));
    await Promise.all(
      ([4, 6] as const).flatMap((family) => [
        (async () => {
          const attempt = this.#runner.run(
            inNetns(netns, [restore(family), '--noflush']),
            renderRemovalOfInstall(modes.get(family) ?? 'redirect'),
          );
          const state = this.#ruleset(netns, family);
          state.catch(() => undefined); // only needed when the attempt fails
          if ((await attempt).exitCode === 0) return;
          const text = renderRemoval(await state);
          if (text !== undefined)
            await this.#must(netns, [restore(family), '--noflush'], `${restore(family)}`, text);
        })(),
        (async () => {
          const routes = await this.#routes(netns, family);
          const commands = removeCommands(family, routes.rules, routes.routes);
          if (commands.length > 0)
            await this.#must(
              netns,
              ['ip', `-${family}`, '-batch', '-'],
              `ip -${family} -batch (remove the policy rule and route)`,
              batchOf(commands),
            );
        })(),
      ]),
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
    for (const { family, mode } of this.plan(families)) {
      const [current, routes] = await Promise.all([
        this.#ruleset(netns, family),
        mode === 'redirect' ? this.#routes(netns, family) : undefined,
      ]);
      problems.push(...verifyInstalled(family, current, mode).map((p) => `IPv${family} ${p}`));
      if (routes !== undefined)
        problems.push(...verifyPolicyRoutes(family, routes.rules, routes.routes));
    }
    return problems;
  }
}
