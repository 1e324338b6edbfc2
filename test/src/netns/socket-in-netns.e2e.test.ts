/**
 * The native netns addon against a real kernel: network namespaces of our
 * own (`mlt-native-<pid>-*`), iptables/ip6tables rules inside them, and
 * traffic only inside those namespaces or on loopback. Needs root.
 */
import assert from 'node:assert/strict';
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { MeshlessError, isErrno } from '../../../src/errors.js';
import { netnsBinding } from '../../../src/netns/native-binding.js';
import { SocketReserve } from '../../../src/netns/socket-reserve.js';
import {
  connectFromNetns,
  connectFromReserve,
  listenInNetns,
  migrateListenerQueues,
  originalDestination,
} from '../../../src/netns/socket-in-netns.js';

const execFile = promisify(execFileCb);
const PREFIX = `mlt-native-${process.pid}-`;
const NS_A = `${PREFIX}a`; // client side: veth va
const NS_B = `${PREFIX}b`; // server side of the transparent test: veth vb
const PATH_A = `/var/run/netns/${NS_A}`;
const PATH_B = `/var/run/netns/${NS_B}`;
const MARK = 0x539;

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces, iptables)' : false;

function run(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function inNs(ns: string, cmd: string, ...args: string[]): string {
  return run('ip', 'netns', 'exec', ns, cmd, ...args);
}
function homeNetns(): string {
  return readlinkSync('/proc/thread-self/ns/net');
}
function portOf(server: net.Server): number {
  const a = server.address();
  assert.ok(a !== null && typeof a === 'object');
  return a.port;
}
/** Resolves with the next connection the server accepts. */
function nextConnection(server: net.Server): Promise<net.Socket> {
  return new Promise((resolve) => server.once('connection', resolve));
}
/** Everything the socket receives until it ends. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}
/** Packets counted by the first `table chain` rule whose text contains `match`. */
function ruleCounter(ns: string, table: string, match: string): number {
  const saved = inNs(ns, 'iptables-save', '-c', '-t', table);
  const line = saved.split('\n').find((l) => l.includes(match));
  const m = line === undefined ? null : /^\[(\d+):\d+\]/.exec(line);
  assert.ok(m?.[1] !== undefined, `no rule matching ${match} in\n${saved}`);
  return Number(m[1]);
}
/** Counts (in A's mangle OUTPUT) packets to 10.55.0.1:`port` marked 0x539; returns the rule's match text. */
function countMarked(port: number): string {
  inNs(
    NS_A,
    'iptables',
    '-w',
    '-t',
    'mangle',
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '-d',
    '10.55.0.1',
    '--dport',
    String(port),
    '-m',
    'mark',
    '--mark',
    '0x539/0xfff',
  );
  return `--dport ${port} -m mark --mark 0x539/0xfff`;
}
async function rejectsWithErrno(promise: Promise<unknown>, errno: string): Promise<MeshlessError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MeshlessError, `not a MeshlessError: ${String(err)}`);
    assert.equal(err.code, 'MESHLESS_E_NETNS');
    assert.equal(err.details?.['errno'], errno, err.message);
    assert.ok(isErrno(err.cause, errno));
    return err;
  }
  assert.fail(`expected a rejection with ${errno}`);
}

describe('sockets in a network namespace (native addon)', { skip }, () => {
  const servers: net.Server[] = [];
  const tmpFile = join(tmpdir(), `${PREFIX}not-a-netns`);
  let home = '';

  async function listen(...args: Parameters<typeof listenInNetns>): Promise<net.Server> {
    const server = await listenInNetns(...args);
    servers.push(server);
    return server;
  }

  before(() => {
    home = homeNetns();
    for (const ns of [NS_A, NS_B]) {
      run('ip', 'netns', 'add', ns);
      run('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    }
    // A <-> B veth, created straight inside the namespaces (no host names).
    run('ip', 'link', 'add', 'va', 'netns', NS_A, 'type', 'veth', 'peer', 'vb', 'netns', NS_B);
    run('ip', '-n', NS_A, 'addr', 'add', '10.56.0.1/24', 'dev', 'va');
    run('ip', '-n', NS_B, 'addr', 'add', '10.56.0.2/24', 'dev', 'vb');
    // A also holds addresses that exist only there, v4 and v6.
    run('ip', '-n', NS_A, 'addr', 'add', '10.55.0.1/24', 'dev', 'va');
    run('ip', '-n', NS_A, 'addr', 'add', 'fd00:55::1/64', 'dev', 'va', 'nodad');
    run('ip', '-n', NS_A, 'link', 'set', 'va', 'up');
    run('ip', '-n', NS_B, 'link', 'set', 'vb', 'up');
    // B sends replies for spoofed sources back to A.
    run('ip', '-n', NS_B, 'route', 'add', '10.77.0.0/16', 'via', '10.56.0.1');
    writeFileSync(tmpFile, 'not a namespace\n');
  });

  after(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    for (const ns of [NS_A, NS_B]) {
      try {
        run('ip', 'netns', 'del', ns);
      } catch {
        // not created (before() failed early)
      }
    }
    rmSync(tmpFile, { force: true });
  });

  it('binds a listener reachable from inside its netns only', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '127.0.0.1', port: 0 });
    let accepted = 0;
    server.on('connection', (s) => {
      accepted += 1;
      s.end('hello from A\n');
    });
    const port = portOf(server);

    // Inside A, with a client that is not ours.
    const { stdout } = await execFile('ip', [
      'netns',
      'exec',
      NS_A,
      'bash',
      '-c',
      `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`,
    ]);
    assert.equal(stdout, 'hello from A\n');
    // Inside A, with connectFromNetns.
    const viaAddon = await connectFromNetns({ netnsPath: PATH_A, host: '127.0.0.1', port });
    assert.equal(await readAll(viaAddon), 'hello from A\n');
    assert.equal(accepted, 2);

    // From the host's loopback: not our listener (refused, unless by chance
    // a host process owns the same port; either way A's server sees nothing).
    const fromHost = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    if (fromHost !== 'connected') assert.equal(fromHost, 'ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(accepted, 2);
    assert.equal(homeNetns(), home);
  });

  it('sizes the receive buffer of a connecting socket and of sockets a listener accepts', async () => {
    const bytes = 20 * 1024 * 1024;
    const server = await listen({
      netnsPath: PATH_A,
      host: '10.55.0.1',
      port: 0,
      receiveBufferBytes: bytes,
    });
    const accepted = nextConnection(server);
    const port = portOf(server);
    const client = await connectFromNetns({
      netnsPath: PATH_A,
      host: '10.55.0.1',
      port,
      receiveBufferBytes: bytes,
    });
    const peer = await accepted;
    // skmem rb: the kernel's receive buffer (twice the request, CAP_NET_ADMIN lifts rmem_max).
    const rb = (localPort: number): number => {
      const out = inNs(NS_A, 'ss', '-tnmH', 'state', 'established', `( sport = :${localPort} )`);
      const m = /rb(\d+)/.exec(out);
      assert.ok(m, `ss shows skmem for :${localPort}: ${out}`);
      return Number(m[1]);
    };
    assert.equal(rb(client.localPort ?? 0), 2 * bytes);
    assert.equal(rb(port), 2 * bytes);
    client.destroy();
    peer.destroy();
    assert.equal(homeNetns(), home);
  });

  it("migrates a closing listener's queued connections to its SO_REUSEPORT peer (tcp_migrate_req)", async () => {
    let nextPort = 41000;
    /** 16 clients from `clientPath` to a port where a listener nobody accepts from shares
     * the port with a serving one; the idle one closes. Returns how many were served. */
    const scenario = async (listenPath: string, host: string, clientPath: string) => {
      const port = nextPort++;
      // A raw listening fd nobody accepts from (Node would accept on an adopted one).
      const idle = netnsBinding().openSocket({
        netnsPath: listenPath,
        family: 4,
        address: host,
        port,
        reuseAddr: true,
        reusePort: true,
        listen: true,
      });
      const serving = await listen({ netnsPath: listenPath, host, port, reusePort: true });
      serving.on('connection', (s) => s.end('served'));
      const clients = await Promise.all(
        Array.from({ length: 16 }, () => connectFromNetns({ netnsPath: clientPath, host, port })),
      );
      closeSync(idle);
      const answers = await Promise.all(
        clients.map((c) => readAll(c).catch((e: Error) => `failed: ${e.message}`)),
      );
      serving.close();
      return answers.filter((a) => a === 'served').length;
    };
    assert.equal(inNs(NS_A, 'sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim(), '0');
    assert.ok(
      (await scenario(PATH_A, '10.56.0.1', PATH_B)) < 16,
      'without migration, queued connections are reset',
    );
    const hostBefore = run('sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim();
    migrateListenerQueues(PATH_B);
    assert.equal(inNs(NS_B, 'sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim(), '1');
    assert.equal(
      run('sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim(),
      hostBefore,
      'the host netns is untouched',
    );
    assert.equal(await scenario(PATH_B, '10.56.0.2', PATH_A), 16);
    assert.equal(homeNetns(), home);
  });

  it('writes a pod sysctl through another mount of /proc/sys/net (a container reads its own read-only)', () => {
    // What the DaemonSet does: the host's /proc/sys/net mounted elsewhere
    // (procSysNetPath); the write lands in the netns of the writing thread.
    const mnt = join(tmpdir(), `meshless-proc-sys-net-${process.pid}`);
    execFileSync('mkdir', ['-p', mnt]);
    execFileSync('mount', ['--bind', '/proc/sys/net', mnt]);
    try {
      inNs(NS_A, 'sysctl', '-qw', 'net.ipv4.tcp_migrate_req=0');
      const hostBefore = run('sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim();
      netnsBinding().writeNetSysctl(PATH_A, 'ipv4/tcp_migrate_req', '1', mnt);
      assert.equal(inNs(NS_A, 'sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim(), '1');
      assert.equal(run('sysctl', '-n', 'net.ipv4.tcp_migrate_req').trim(), hostBefore);
      assert.throws(
        () => netnsBinding().writeNetSysctl(PATH_A, 'ipv4/tcp_migrate_req', '1', `${mnt}/../x`),
        TypeError,
      );
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('connects from netns A with SO_MARK to a server that exists only in A', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '10.55.0.1', port: 0 });
    server.on('connection', (s) => s.end('marked ok\n'));
    const port = portOf(server);
    const match = countMarked(port);
    assert.equal(ruleCounter(NS_A, 'mangle', match), 0);

    const marked = await connectFromNetns({
      netnsPath: PATH_A,
      host: '10.55.0.1',
      port,
      mark: MARK,
      noDelay: true,
    });
    assert.equal(marked.localAddress, '10.55.0.1');
    assert.equal(await readAll(marked), 'marked ok\n');
    if (!marked.closed) await once(marked, 'close'); // its FIN is out: nothing more to count
    const afterMarked = ruleCounter(NS_A, 'mangle', match);
    assert.ok(afterMarked >= 3, `marked packets counted: ${afterMarked}`);

    // The same connection without a mark does not match the rule.
    const plain = await connectFromNetns({ netnsPath: PATH_A, host: '10.55.0.1', port });
    assert.equal(await readAll(plain), 'marked ok\n');
    if (!plain.closed) await once(plain, 'close');
    assert.equal(ruleCounter(NS_A, 'mangle', match), afterMarked);
    assert.equal(homeNetns(), home);
  });

  it('reads SO_ORIGINAL_DST after an iptables REDIRECT (IPv4)', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '0.0.0.0', port: 0, mark: MARK });
    const port = portOf(server);
    inNs(
      NS_A,
      'iptables',
      '-w',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      '10.55.0.9',
      '--dport',
      '80',
      '-j',
      'REDIRECT',
      '--to-ports',
      String(port),
    );
    const accepted = nextConnection(server);
    const client = await connectFromNetns({ netnsPath: PATH_A, host: '10.55.0.9', port: 80 });
    const conn = await accepted;
    assert.deepEqual(originalDestination(conn), { family: 4, address: '10.55.0.9', port: 80 });
    assert.equal(conn.localPort, port); // really redirected
    client.destroy();
    conn.destroy();
  });

  it('reads IP6T_SO_ORIGINAL_DST after an ip6tables REDIRECT (IPv6)', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '::', port: 0, v6Only: true });
    const port = portOf(server);
    inNs(
      NS_A,
      'ip6tables',
      '-w',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      'fd00:55::9',
      '--dport',
      '443',
      '-j',
      'REDIRECT',
      '--to-ports',
      String(port),
    );
    const accepted = nextConnection(server);
    const client = await connectFromNetns({ netnsPath: PATH_A, host: 'fd00:55::9', port: 443 });
    const conn = await accepted;
    assert.deepEqual(originalDestination(conn), { family: 6, address: 'fd00:55::9', port: 443 });
    client.destroy();
    conn.destroy();
  });

  it('reports an IPv4 original destination on a dual-stack listener', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '::', port: 0, v6Only: false });
    const port = portOf(server);
    inNs(
      NS_A,
      'iptables',
      '-w',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '-d',
      '10.55.0.10',
      '--dport',
      '8080',
      '-j',
      'REDIRECT',
      '--to-ports',
      String(port),
    );
    const accepted = nextConnection(server);
    const client = await connectFromNetns({ netnsPath: PATH_A, host: '10.55.0.10', port: 8080 });
    const conn = await accepted;
    assert.match(conn.localAddress ?? '', /^::ffff:/);
    assert.deepEqual(originalDestination(conn), { family: 4, address: '10.55.0.10', port: 8080 });
    client.destroy();
    conn.destroy();
  });

  it('binds a non-local source with IP_TRANSPARENT; the server sees the spoofed source', async () => {
    // Client side (A) as ztunnel does it: connections of marked sockets get
    // connmark 0x111, replies get it back as their mark and are routed locally.
    inNs(
      NS_A,
      'iptables',
      '-w',
      '-t',
      'mangle',
      '-A',
      'OUTPUT',
      '-m',
      'mark',
      '--mark',
      '0x539/0xfff',
      '-j',
      'CONNMARK',
      '--set-xmark',
      '0x111/0xfff',
    );
    inNs(
      NS_A,
      'iptables',
      '-w',
      '-t',
      'mangle',
      '-A',
      'PREROUTING',
      '-m',
      'connmark',
      '--mark',
      '0x111/0xfff',
      '-j',
      'CONNMARK',
      '--restore-mark',
      '--nfmask',
      '0xffffffff',
      '--ctmask',
      '0xffffffff',
    );
    run('ip', '-n', NS_A, 'rule', 'add', 'fwmark', '0x111/0xfff', 'pref', '32764', 'lookup', '100');
    run('ip', '-n', NS_A, 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100');

    const server = await listen({ netnsPath: PATH_B, host: '10.56.0.2', port: 0 });
    const port = portOf(server);
    const accepted = nextConnection(server);
    const client = await connectFromNetns({
      netnsPath: PATH_A,
      host: '10.56.0.2',
      port,
      mark: MARK,
      transparent: true,
      bindAddress: '10.77.0.5',
      bindPort: 41000,
    });
    const conn = await accepted;
    assert.equal(conn.remoteAddress, '10.77.0.5');
    assert.equal(conn.remotePort, 41000);
    assert.equal(client.localAddress, '10.77.0.5');
    // Bytes flow both ways (replies to the spoofed address come back to A).
    conn.end('pong\n');
    assert.equal(await readAll(client), 'pong\n');
    conn.destroy();

    // Without IP_TRANSPARENT the same bind is refused.
    await rejectsWithErrno(
      connectFromNetns({ netnsPath: PATH_A, host: '10.56.0.2', port, bindAddress: '10.77.0.6' }),
      'EADDRNOTAVAIL',
    );
    assert.equal(homeNetns(), home);
  });

  it('rejects with ECONNREFUSED and ETIMEDOUT from inside the netns', async () => {
    await rejectsWithErrno(
      connectFromNetns({ netnsPath: PATH_A, host: '10.55.0.1', port: 9, mark: MARK }),
      'ECONNREFUSED',
    );
    inNs(NS_A, 'iptables', '-w', '-A', 'OUTPUT', '-p', 'tcp', '-d', '10.55.0.20', '-j', 'DROP');
    const started = Date.now();
    const err = await rejectsWithErrno(
      connectFromNetns({ netnsPath: PATH_A, host: '10.55.0.20', port: 80, timeoutMs: 300 }),
      'ETIMEDOUT',
    );
    assert.ok(Date.now() - started < 5000);
    assert.match(err.message, /10\.55\.0\.20:80/);
    assert.match(err.message, new RegExp(PATH_A));
  });

  it('fails with ENOENT for a missing netns, EINVAL for a file that is not one', async () => {
    const missing = `/var/run/netns/${PREFIX}missing`;
    const err = await rejectsWithErrno(listenInNetns({ netnsPath: missing, port: 0 }), 'ENOENT');
    assert.match(err.message, new RegExp(missing));
    assert.match(err.message, /listen/);
    await rejectsWithErrno(
      connectFromNetns({ netnsPath: missing, host: '127.0.0.1', port: 80 }),
      'ENOENT',
    );
    const notNs = await rejectsWithErrno(listenInNetns({ netnsPath: tmpFile, port: 0 }), 'EINVAL');
    assert.equal(notNs.details?.['syscall'], 'setns');
    assert.equal(homeNetns(), home);
  });

  it('fails with EADDRINUSE inside the netns unless both listeners ask for SO_REUSEPORT', async () => {
    const first = await listen({ netnsPath: PATH_A, host: '127.0.0.1', port: 0 });
    const port = portOf(first);
    const err = await rejectsWithErrno(
      listenInNetns({ netnsPath: PATH_A, host: '127.0.0.1', port }),
      'EADDRINUSE',
    );
    assert.equal(err.details?.['syscall'], 'bind');
    // The failure happened inside A; the thread is home again.
    assert.equal(homeNetns(), home);

    const shared = await listen({ netnsPath: PATH_A, host: '127.0.0.1', port: 0, reusePort: true });
    const twin = await listen({
      netnsPath: PATH_A,
      host: '127.0.0.1',
      port: portOf(shared),
      reusePort: true,
    });
    assert.equal(portOf(twin), portOf(shared));
  });

  it('leaks no fd on failure paths (open, setns, bind inside the netns)', async () => {
    const busy = await listen({ netnsPath: PATH_A, host: '127.0.0.1', port: 0 });
    const attempts = [
      { netnsPath: `/var/run/netns/${PREFIX}missing`, port: 0 },
      { netnsPath: tmpFile, port: 0 },
      { netnsPath: PATH_A, host: '127.0.0.1', port: portOf(busy) },
    ];
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 50; i++)
      for (const a of attempts) await assert.rejects(listenInNetns(a), MeshlessError);
    assert.equal(readdirSync('/proc/self/fd').length, before);
    assert.equal(homeNetns(), home);
  });

  it('leaves the calling thread in its own netns: a socket made without a netns path is the host’s', async () => {
    await listen({ netnsPath: PATH_A, host: '127.0.0.1', port: 0 });
    await rejectsWithErrno(listenInNetns({ netnsPath: tmpFile, port: 0 }), 'EINVAL');
    assert.equal(homeNetns(), home);
    // Created with no netns path after all the above: reachable with plain
    // `net` from this (host) netns.
    const server = await listen({ host: '127.0.0.1', port: 0 });
    server.on('connection', (s) => s.end('home\n'));
    const s = net.connect(portOf(server), '127.0.0.1');
    assert.equal(await readAll(s), 'home\n');
  });
  it('accepted sockets inherit SO_LINGER 0 from a listener with abortOnClose: closing one resets its peer', async () => {
    /** What a client of `server` sees when the server closes its accepted socket at once. */
    const clientSees = async (server: net.Server): Promise<string> => {
      server.once('connection', (s) => s.destroy());
      const c = net.connect(portOf(server), '127.0.0.1');
      c.on('data', () => undefined);
      return new Promise((resolve) => {
        c.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? 'error'));
        c.once('end', () => resolve('end'));
      });
    };
    const plain = await listen({ host: '127.0.0.1', port: 0 });
    assert.equal(await clientSees(plain), 'end', 'an ordinary listener: FIN');
    const abortive = await listen({
      host: '127.0.0.1',
      port: 0,
      abortOnClose: true,
      noDelay: true,
    });
    assert.equal(await clientSees(abortive), 'ECONNRESET', 'inherited SO_LINGER 0: RST');
  });

  it('a socket reserve makes sockets in its netns ahead, marked; connectFromReserve needs no setns', async () => {
    const server = await listen({ netnsPath: PATH_A, host: '10.55.0.1', port: 0 });
    server.on('connection', (s) => s.end(`${s.remoteAddress ?? '?'}\n`));
    const port = portOf(server);
    const match = countMarked(port);
    const fdsBefore = readdirSync('/proc/self/fd').length;
    const reserve = new SocketReserve(
      { netnsPath: PATH_A, family: 4, mark: MARK, abortOnClose: true, noDelay: true },
      4,
    );
    assert.equal(reserve.size, 0, 'made on first use');
    const first = await connectFromReserve(reserve, { host: '10.55.0.1', port });
    assert.equal(reserve.size, 3, 'one batch of 4, one taken');
    assert.equal(await readAll(first), '10.55.0.1\n', 'the server exists only in A');
    if (!first.closed) await once(first, 'close');
    assert.ok(ruleCounter(NS_A, 'mangle', match) >= 3, 'its packets carry the mark');
    // Five more: the reserve refills when empty.
    for (let i = 0; i < 5; i++) {
      const s = await connectFromReserve(reserve, { host: '10.55.0.1', port });
      assert.equal(await readAll(s), '10.55.0.1\n');
      if (!s.closed) await once(s, 'close');
    }
    assert.equal(reserve.size, 2);
    assert.equal(homeNetns(), home);
    reserve.close();
    assert.equal(reserve.size, 0);
    // The server's side of the last connection closes on its own schedule.
    for (let i = 0; i < 100 && readdirSync('/proc/self/fd').length > fdsBefore; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(readdirSync('/proc/self/fd').length, fdsBefore, 'every fd closed');
    await assert.rejects(
      connectFromReserve(reserve, { host: '10.55.0.1', port }),
      /reserve is closed/,
    );
  });

  it('a transparent reserve binds the foreign source per connection', async () => {
    // Routing for 10.77/16 replies was set up by the IP_TRANSPARENT test above.
    const server = await listen({ netnsPath: PATH_B, host: '10.56.0.2', port: 0 });
    const port = portOf(server);
    const reserve = new SocketReserve({
      netnsPath: PATH_A,
      family: 4,
      mark: MARK,
      transparent: true,
    });
    const accepted = nextConnection(server);
    const client = await connectFromReserve(reserve, {
      host: '10.56.0.2',
      port,
      bindAddress: '10.77.0.9',
    });
    const conn = await accepted;
    assert.equal(conn.remoteAddress, '10.77.0.9');
    conn.end('pong\n');
    assert.equal(await readAll(client), 'pong\n');
    conn.destroy();
    await assert.rejects(
      connectFromReserve(reserve, { host: 'fd00:55::1', port }),
      /must be IPv4 like the reserve/,
    );
    reserve.close();
    // A reserve whose netns is gone fails like connectFromNetns, and keeps nothing.
    const gone = new SocketReserve({ netnsPath: `/var/run/netns/${PREFIX}missing`, family: 4 });
    await rejectsWithErrno(connectFromReserve(gone, { host: '10.56.0.2', port }), 'ENOENT');
    assert.equal(gone.size, 0);
  });
});
