/**
 * What the bench needs before it measures: the Debian packages of its
 * clients and servers (installed with apt-get when missing), its C tools
 * compiled, the Node LTS binary for the daemons, and the facts about the
 * machine the report starts with.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadDaemonConfig } from '../../src/config/daemon-config.js';

/** Binary -> Debian package. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['iperf3', 'iperf3'],
  ['stunnel4', 'stunnel4'],
  ['ab', 'apache2-utils'],
  ['wrk', 'wrk'],
  ['sockperf', 'sockperf'],
  ['cc', 'gcc'],
  ['openssl', 'openssl'],
];

/** Installs the Debian packages of missing tools (apt-get, non-interactive). */
export function ensureTools(log: (msg: string) => void): void {
  const missing = TOOLS.filter(
    ([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0,
  );
  if (missing.length === 0) return;
  const pkgs = missing.map(([, pkg]) => pkg);
  log(`installing ${pkgs.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env,
  });
}

/** Compiles bench/tools/*.c into `dir`; their paths. */
export function compileTools(dir: string): { netbench: string; httpd: string } {
  const netbench = join(dir, 'netbench');
  const httpd = join(dir, 'httpd');
  execFileSync('cc', ['-O2', '-pthread', '-o', netbench, 'bench/tools/netbench.c']);
  execFileSync('cc', ['-O2', '-o', httpd, 'bench/tools/httpd.c']);
  return { netbench, httpd };
}

/**
 * The Node LTS binary of scripts/node-lts.mjs (fetched from the npm
 * registry into .cache/node-lts/ on first use), or the reason it is not
 * there.
 */
export function ltsNode(): { bin: string } | { error: string } {
  const r = spawnSync(process.execPath, ['scripts/node-lts.mjs'], { encoding: 'utf8' });
  if (r.status !== 0) return { error: `scripts/node-lts.mjs failed: ${r.stderr.trim()}` };
  return { bin: join(r.stdout.trim(), 'bin', 'node') };
}

/** `node --version` of a binary. */
export function nodeVersion(bin: string): string {
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
}

/**
 * Whether the daemon's configuration accepts the top-level keys of
 * `config` (the daemon's own loader, as it would at start-up): refused
 * only when the loader's message names one of them, so that a partial
 * probe missing some other required key does not count as a refusal (the
 * daemon's start then decides). How the bench learns whether this build
 * knows `dataPlane.workers`.
 */
export function daemonAccepts(
  dir: string,
  config: Readonly<Record<string, unknown>>,
): { ok: true } | { ok: false; reason: string } {
  const file = join(dir, 'config-probe.json');
  writeFileSync(file, JSON.stringify(config));
  try {
    loadDaemonConfig({ file, env: {} });
    return { ok: true };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const named = Object.keys(config).some((k) => reason.includes(`"${k}`));
    return named ? { ok: false, reason } : { ok: true };
  }
}

function version(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout}${r.stderr}`)?.[0] ?? '?';
}

/** The machine and tool versions the report names. */
export function machine(): Record<string, string> {
  const cpu = cpus();
  return {
    cpu: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    node: process.version,
    openssl: version('openssl', ['version'], /OpenSSL [\d.]+\w*/),
    stunnel: version('stunnel', ['-version'], /stunnel [\d.]+/),
    iperf3: version('iperf3', ['--version'], /iperf [\d.]+/),
    ab: version('ab', ['-V'], /Version [\d.]+/).replace('Version', 'ab'),
    wrk: version('wrk', ['--version'], /wrk \S+/),
    sockperf: version('sockperf', ['--version'], /version [\d.]+/).replace('version', 'sockperf'),
  };
}

/** The checked-out commit, short. */
export function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}
