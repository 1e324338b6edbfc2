/**
 * The repository stands on its own: no file points at documents outside it
 * (a design card, a facts sheet, a sibling checkout, an issue tracker), and
 * every path it names inside itself exists: relative Markdown links and
 * their anchors, `docs/...` paths in code, comments and program output, and
 * source paths quoted in the documentation.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, anchorsOf, linkTargets, readRepoFile, repoTextFiles } from './markdown.js';

/** What a pointer outside the repository looks like, with why it is one. */
const OUTSIDE: readonly { readonly pattern: RegExp; readonly what: string }[] = [
  { pattern: /\.\.\/shared\b/, what: 'a sibling checkout (../shared)' },
  {
    pattern: /\b(?:FACTS|DESIGN|STYLE)(?:\.md)?\s*(?:§|section)/i,
    what: 'a section of an outside document',
  },
  { pattern: /\b(?:FACTS|DESIGN|STYLE)\.md\b/, what: 'a document that is not in the repository' },
  { pattern: /\bFACTS\b/, what: 'the facts sheet (now docs/reference/)' },
  { pattern: /\bdesign card\b/i, what: 'the design card' },
  { pattern: /(?<![\w.-])\/work\//, what: 'a path of a development machine' },
  { pattern: /\bissue #?\d+\b/i, what: 'an issue of a tracker that is not public' },
];

const SELF = 'test/docs/self-contained.test.ts';
const files = repoTextFiles();
const markdown = files.filter((f) => f.endsWith('.md'));

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

describe('the repository stands on its own', () => {
  it('scans the files it should', () => {
    for (const f of [
      'README.md',
      'docs/README.md',
      'src/errors.ts',
      'native/netns.c',
      'install.sh',
    ])
      assert.ok(files.includes(f), f);
  });

  it('names no document outside the repository', () => {
    const found: string[] = [];
    for (const file of files) {
      if (file === SELF) continue;
      const text = readRepoFile(file);
      for (const { pattern, what } of OUTSIDE) {
        const m = new RegExp(pattern.source, pattern.flags + 'g').exec(text);
        if (m) found.push(`${file}:${lineOf(text, m.index)}: "${m[0]}" (${what})`);
      }
    }
    assert.deepEqual(found, [], 'point at docs/ instead');
  });

  it('has every relative Markdown link resolve inside the repository, anchors included', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      for (const target of linkTargets(readRepoFile(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path = '', anchor] = target.split('#');
        const absolute = path === '' ? join(REPO, file) : resolve(REPO, dirname(file), path);
        const inside = relative(REPO, absolute);
        if (inside.startsWith('..')) broken.push(`${file}: ${target} leaves the repository`);
        else if (!existsSync(absolute)) broken.push(`${file}: ${target} does not exist`);
        else if (anchor !== undefined && absolute.endsWith('.md')) {
          if (!anchorsOf(readRepoFile(inside)).has(anchor))
            broken.push(`${file}: ${target} has no heading "#${anchor}"`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('has every docs/ path named in code, comments, output and pages exist', () => {
    const missing: string[] = [];
    for (const file of files) {
      if (file === SELF) continue;
      const text = readRepoFile(file);
      for (const m of text.matchAll(/(?<![\w./-])docs\/[\w./-]*[\w/]/g)) {
        if (!existsSync(join(REPO, m[0])))
          missing.push(`${file}:${lineOf(text, m.index)}: ${m[0]}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('has every source path the pages quote exist', () => {
    const missing: string[] = [];
    const quoted = /`((?:src|cni|daemon|cli|test|deploy|bench|native|scripts)\/[\w./-]*[\w/])`/g;
    for (const file of markdown) {
      // A "Sources:" paragraph quotes paths of other projects (istio/ztunnel `src/...`).
      const paragraphs = readRepoFile(file).split(/\n\s*\n/);
      for (const paragraph of paragraphs.filter((p) => !p.startsWith('Sources:'))) {
        for (const m of paragraph.matchAll(quoted)) {
          const path = m[1] ?? '';
          if (!existsSync(join(REPO, path))) missing.push(`${file}: ${path}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });
});
