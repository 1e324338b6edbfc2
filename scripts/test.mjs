#!/usr/bin/env node
// Runs one test tier (or all) with node:test, TypeScript loaded through tsx.
//   unit         test/**/*.test.ts minus the two tiers below: pure, no I/O beyond temp files
//   integration  test/**/*.int.test.ts: in-process, loopback and Unix sockets
//   e2e          test/**/*.e2e.test.ts: real network namespaces, iptables and CNI plugins (root)
// Usage: node scripts/test.mjs unit|integration|e2e|all [file-filter]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const tiers = {
  unit: (f) => f.endsWith('.test.ts') && !f.endsWith('.int.test.ts') && !f.endsWith('.e2e.test.ts'),
  integration: (f) => f.endsWith('.int.test.ts'),
  e2e: (f) => f.endsWith('.e2e.test.ts'),
};

const [tier = 'all', filter = ''] = process.argv.slice(2);
const wanted = tier === 'all' ? ['unit', 'integration', 'e2e'] : [tier];
for (const t of wanted) {
  if (!(t in tiers)) {
    console.error(`unknown tier "${t}"; use unit, integration, e2e or all`);
    process.exit(2);
  }
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'testdata' || name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(relative(process.cwd(), p));
  }
  return out;
}

const all = walk('test').sort();
let failed = false;
for (const t of wanted) {
  const files = all.filter(tiers[t]).filter((f) => f.includes(filter));
  if (files.length === 0) continue;
  console.log(`\n=== ${t} tier: ${files.length} file(s)`);
  // e2e tests share the kernel (netns names, iptables): one file at a time.
  const concurrency = t === 'e2e' ? 1 : 2;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      ...files,
    ],
    { stdio: 'inherit', env: { ...process.env, MESHLESS_TEST_TIER: t } },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
