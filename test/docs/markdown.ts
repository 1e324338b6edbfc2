/**
 * Test-only helpers to read the repository's Markdown: the repository's
 * root, its text files, the rows of a table under a heading, the links of a
 * page and the anchors GitHub derives from its headings.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Directories never scanned: installed, built or generated content. */
const SKIPPED_DIRS = new Set(['.git', 'node_modules', 'dist', 'build', 'results', '.cache', 'tmp']);
/** Extensions of the text files the repository authors. */
const TEXT_FILE = /(\.(ts|mts|mjs|js|c|h|md|sh|ya?ml|gyp)|Dockerfile[^/]*)$/;

/** Every authored text file, as paths relative to the repository's root. */
export function repoTextFiles(dir = REPO): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (!SKIPPED_DIRS.has(name)) out.push(...repoTextFiles(path));
    } else if (TEXT_FILE.test(name)) out.push(relative(REPO, path));
  }
  return out.sort();
}

export function readRepoFile(path: string): string {
  return readFileSync(join(REPO, path), 'utf8');
}

/** The cells of every table row under `heading` (up to the next heading of its level or above). */
export function tableRows(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const level = /^#+/.exec(heading)?.[0].length ?? 1;
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    const h = /^(#+) /.exec(line);
    if (h?.[1] !== undefined && h[1].length <= level) break;
    if (!line.startsWith('|') || /^\|\s*-+/.test(line)) continue;
    rows.push(
      line
        .slice(1, line.lastIndexOf('|'))
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
  }
  return rows.slice(1); // the header row
}

/** The code spans (`...`) of a table cell. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
}

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to '-'. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of every heading of a page (outside code blocks). */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = /^#+ (.*)$/.exec(line);
    if (!fenced && h?.[1] !== undefined) anchors.add(anchorOf(h[1]));
  }
  return anchors;
}

/** The targets of the inline links and images of a page, outside code. */
export function linkTargets(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '');
}
