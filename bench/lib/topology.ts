/**
 * The processes of the data-plane benchmark inside the simulated cluster:
 * servers started in a pod's netns (iperf3, the echo server, stunnel), the
 * stunnel pair's EC P-256 certificates, and clients run to completion.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A long-running process in a netns; `ip netns exec` execs, so `pid` is the program's. */
export interface NsProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `argv` inside netns `ns`, output appended to `logFile`. */
export function startInNs(ns: string, argv: readonly string[], logFile: string): NsProcess {
  const out = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')} in ${ns}`);
  return {
    pid: child.pid,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Runs `argv` inside `ns` to completion; throws with its stderr on failure. */
export function runInNs(ns: string, argv: readonly string[], timeoutMs = 120_000): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(
      `${argv.join(' ')} in ${ns} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`,
    );
  return r.stdout;
}

/** Waits until `port` accepts on `host` from inside `ns`. */
export async function waitListening(ns: string, host: string, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, 'bash', '-c', `echo > /dev/tcp/${host}/${port}`],
      {
        stdio: 'ignore',
        timeout: 2000,
      },
    );
    if (r.status === 0) return;
    if (Date.now() > deadline) throw new Error(`${host}:${port} in ${ns} is not listening`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Files of the stunnel pair's PKI: one CA, a server and a client certificate (EC P-256). */
export interface StunnelPki {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

function openssl(args: readonly string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

export function makeStunnelPki(dir: string): StunnelPki {
  const f = (n: string): string => join(dir, n);
  const key = (out: string): void =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]);
  key(f('ca.key'));
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-subj',
    '/CN=bench-ca',
    '-days',
    '2',
    '-out',
    f('ca.crt'),
  ]);
  for (const who of ['server', 'client']) {
    key(f(`${who}.key`));
    openssl([
      'req',
      '-new',
      '-key',
      f(`${who}.key`),
      '-subj',
      `/CN=${who}`,
      '-out',
      f(`${who}.csr`),
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      f(`${who}.crt`),
    ]);
  }
  return {
    caCert: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/** One forwarded service of a stunnel process. */
export interface StunnelService {
  readonly name: string;
  readonly accept: string;
  readonly connect: string;
}

/**
 * A stunnel configuration: mutual TLS 1.3 only, chain verified both ways,
 * TCP_NODELAY on both sockets (as meshless sets it), foreground.
 */
export function stunnelConfig(
  role: 'client' | 'server',
  pki: StunnelPki,
  services: readonly StunnelService[],
): string {
  const [cert, key] =
    role === 'client' ? [pki.clientCert, pki.clientKey] : [pki.serverCert, pki.serverKey];
  const lines = [
    'foreground = yes',
    'pid =',
    'debug = 3',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
  ];
  for (const s of services)
    lines.push(
      `[${s.name}]`,
      ...(role === 'client' ? ['client = yes'] : []),
      `accept = ${s.accept}`,
      `connect = ${s.connect}`,
      `cert = ${cert}`,
      `key = ${key}`,
      `CAfile = ${pki.caCert}`,
      'verifyChain = yes',
      'requireCert = yes',
      'sslVersionMin = TLSv1.3',
    );
  return lines.join('\n') + '\n';
}

export function writeStunnelConfig(
  file: string,
  role: 'client' | 'server',
  pki: StunnelPki,
  services: readonly StunnelService[],
): string {
  writeFileSync(file, stunnelConfig(role, pki, services));
  return file;
}
