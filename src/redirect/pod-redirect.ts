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
  batchOf,
  inspectBatch,
  installBatch,
  installCommands,
  onlyAlreadyExists,
  removeCommands,
  verifyPolicyRoutes,
} from './policy-routes.js';
import { renderInstall, renderRemoval, renderRemovalOfInstall, verifyInstalled } from './rules.js';

const save = (f: IpFamily): string => (f === 4 ? 'iptables-save' : 'ip6tables-save');
const restore = (f: IpFamily): string => (f === 4 ? 'iptables-restore' : 'ip6tables-restore');

/** An install whose reads have started (see {@link PodRedirect.prepareInstall}). */
export interface PreparedInstall {
  /** Installs the rules; rejects with MESHLESS_E_REDIRECT (a failed read included). */
  apply(): Promise<void>;
}

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
    const reads = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
      families.map((family) => {
        const state = this.#ruleset(netns, family);
        state.catch(() => undefined); // reported by apply(), if it runs
        return state;
      }),
    );
    return {
      apply: async () => {
        const states = await reads;
        await Promise.all(
          families.map(async (family, i) => {
            const current = await states[i];
            if (current === undefined) return;
            await Promise.all([
              this.#policyRoutes(netns, family),
              this.#must(
                netns,
                [restore(family), '--noflush'],
                `${restore(family)} --noflush`,
                renderInstall(family, current),
              ),
            ]);
          }),
        );
      },
    };
  }

  /** Installs the rules for each family (idempotent); see {@link prepareInstall}. */
  install(netns: string, families: readonly IpFamily[]): Promise<void> {
    return this.prepareInstall(netns, families).apply();
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

  /**
   * Removes everything of ours for the given families, by default both
   * (idempotent). Per family, two independent chains run in parallel,
   * families in parallel:
   * - iptables: the restore that removes exactly one install of ours is
   *   tried at once, beside an iptables-save; it either commits whole or
   *   changes nothing, and then the removal is rendered from the save (a
   *   netns without our rules, doubled jumps). Reading first would put the
   *   save before the restore, whose commit waits ~20 ms on the kernel.
   * - policy routing: one `ip -batch` listing, then one deleting.
   */
  async remove(netns: string, families: readonly IpFamily[] = [4, 6]): Promise<void> {
    await Promise.all(
      families.flatMap((family) => [
        (async () => {
          const attempt = this.#runner.run(
            inNetns(netns, [restore(family), '--noflush']),
            renderRemovalOfInstall(),
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
