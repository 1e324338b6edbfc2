import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ClusterSnapshot } from '../../../src/discovery/cluster-state.js';
import { FileDiscoverySource } from '../../../src/discovery/file-source.js';
import { MeshlessError } from '../../../src/errors.js';
import type { Logger } from '../../../src/logger.js';
import { until } from '../../support/until.js';

const WAIT_MS = 5000;

function nsYaml(...names: string[]): string {
  return (
    'apiVersion: v1\nkind: List\nitems:\n' +
    names.map((n) => `- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: ${n}\n`).join('')
  );
}

const names = (s: ClusterSnapshot): string[] => [...s.namespaces.keys()].sort();

/** Resolves with the next snapshot that satisfies `pred`; rejects after WAIT_MS. */
function nextChange(
  source: FileDiscoverySource,
  pred: (s: ClusterSnapshot) => boolean,
): Promise<ClusterSnapshot> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new Error(`no matching change within ${WAIT_MS} ms`));
    }, WAIT_MS);
    source.onChange((s) => {
      if (done || !pred(s)) return;
      done = true;
      clearTimeout(timer);
      resolve(s);
    });
  });
}

/** A logger that records error/warn messages, to observe rejected edits without sleeping. */
function recordingLogger(): Logger & { events: { level: string; msg: string }[] } {
  const events: { level: string; msg: string }[] = [];
  const log = {
    events,
    debug: () => undefined,
    info: (_f: Record<string, unknown>, msg: string) => events.push({ level: 'info', msg }),
    warn: (_f: Record<string, unknown>, msg: string) => events.push({ level: 'warn', msg }),
    error: (_f: Record<string, unknown>, msg: string) => events.push({ level: 'error', msg }),
    child: () => log,
  };
  return log;
}

/** Polls `cond` on a short timer until true; rejects after WAIT_MS. */
const eventually = (cond: () => boolean, what: string): Promise<void> => until(what, cond, WAIT_MS);

describe('FileDiscoverySource', () => {
  let dir = '';
  const sources: FileDiscoverySource[] = [];
  let n = 0;
  const fresh = (text: string, log?: Logger): { path: string; source: FileDiscoverySource } => {
    const path = join(dir, `cluster-${n++}.yaml`);
    writeFileSync(path, text);
    const source = new FileDiscoverySource(path, log);
    sources.push(source);
    return { path, source };
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshless-discovery-'));
  });
  afterEach(() => {
    for (const s of sources.splice(0)) s.close();
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('start() loads the file and reports synced', async () => {
    const { source } = fresh(nsYaml('a', 'b'));
    assert.equal(source.synced, false);
    assert.equal(source.snapshot().namespaces.size, 0);
    await source.start();
    assert.equal(source.synced, true);
    assert.deepEqual(names(source.snapshot()), ['a', 'b']);
  });

  it('start() fails on a missing file', async () => {
    const source = new FileDiscoverySource(join(dir, 'absent.yaml'));
    await assert.rejects(source.start(), (err: unknown) => {
      return err instanceof MeshlessError && err.code === 'MESHLESS_E_DISCOVERY_FILE';
    });
    assert.equal(source.synced, false);
  });

  it('start() fails on an invalid file', async () => {
    const { source } = fresh('kind: Namespace\nmetadata: {}\n');
    await assert.rejects(source.start(), /metadata\.name/);
    assert.equal(source.synced, false);
  });

  it('picks up an edit in place', async () => {
    const { path, source } = fresh(nsYaml('a'));
    await source.start();
    const changed = nextChange(source, (s) => names(s).includes('b'));
    writeFileSync(path, nsYaml('a', 'b'));
    assert.deepEqual(names(await changed), ['a', 'b']);
    assert.deepEqual(names(source.snapshot()), ['a', 'b']);
  });

  it('picks up an atomic replace (write a temp file, rename over)', async () => {
    const { path, source } = fresh(nsYaml('a'));
    await source.start();
    const changed = nextChange(source, (s) => names(s).includes('c'));
    const tmp = join(dir, '.cluster.tmp');
    writeFileSync(tmp, nsYaml('c'));
    renameSync(tmp, path);
    assert.deepEqual(names(await changed), ['c']);
  });

  it('keeps the last good snapshot across an invalid edit, then recovers', async () => {
    const log = recordingLogger();
    const { path, source } = fresh(nsYaml('a'), log);
    await source.start();
    let notified = 0;
    source.onChange(() => notified++);
    writeFileSync(path, 'items: [\n');
    await eventually(
      () => log.events.some((e) => e.level === 'error' && /invalid discovery file/.test(e.msg)),
      'the invalid edit to be rejected',
    );
    assert.equal(notified, 0, 'an invalid edit is not announced');
    assert.deepEqual(names(source.snapshot()), ['a']);

    const changed = nextChange(source, (s) => names(s).includes('d'));
    writeFileSync(path, nsYaml('a', 'd'));
    assert.deepEqual(names(await changed), ['a', 'd']);
  });

  it('reload() with unchanged content announces nothing', async () => {
    const { source } = fresh(nsYaml('a'));
    await source.start();
    let notified = 0;
    source.onChange(() => notified++);
    await source.reload();
    assert.equal(notified, 0);
  });

  it('a deleted file keeps the last snapshot', async () => {
    const log = recordingLogger();
    const { path, source } = fresh(nsYaml('a'), log);
    await source.start();
    rmSync(path);
    await source.reload();
    assert.deepEqual(names(source.snapshot()), ['a']);
    assert.ok(log.events.some((e) => e.level === 'warn' && /unreadable/.test(e.msg)));
  });

  it('edits of other files in the directory are ignored', async () => {
    const { source } = fresh(nsYaml('a'));
    await source.start();
    let notified = 0;
    source.onChange(() => notified++);
    writeFileSync(join(dir, 'unrelated.yaml'), nsYaml('zzz'));
    // Then an edit of ours: once it is seen, the unrelated one had its chance.
    const other = fresh(nsYaml('x'));
    await other.source.start();
    const seen = nextChange(other.source, (s) => names(s).includes('y'));
    writeFileSync(other.path, nsYaml('y'));
    await seen;
    assert.equal(notified, 0);
    assert.deepEqual(names(source.snapshot()), ['a']);
  });
});
