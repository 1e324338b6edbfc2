/**
 * Pure edits of a CNI network config: insert our entry at the end of
 * `plugins`, remove it again, wrap a single-plugin `.conf` into a
 * `.conflist`. Text in, text out; the file system lives in install.ts.
 *
 * Invariants:
 * - Only entries whose `type` is `meshless-cni` are ever removed; every other
 *   key, plugin and key order of the file is kept.
 * - insert(insert(x)) === insert(x) and remove(remove(x)) === remove(x),
 *   byte for byte (the run-twice tests hold us to it).
 * - remove(insert(x)) === x byte for byte, as long as nobody else changed
 *   the file in between: install records the original bytes in the file
 *   itself (RECORD_KEY, see below). When the file did change, uninstall
 *   still removes our entry but keeps their change rather than the record.
 * - Bad input throws MeshlessError `MESHLESS_E_INSTALL` naming the file and
 *   what is wrong; callers write nothing then.
 *
 * Why the record lives inside the conflist, at the top level: it describes
 * the file (its original bytes and, for a wrapped `.conf`, its original
 * name), so it belongs to the file, and it disappears together with the
 * file if another tool rewrites it, so it can never go stale unnoticed the
 * way a side file in /etc/cni/net.d could. Runtimes (libcni) ignore unknown
 * top-level keys of a conflist and pass a plugin only its own entry, so the
 * record never reaches any plugin, ours included. (istio-cni keeps no
 * record: its uninstall leaves a wrapped `.conf` as a `.conflist`.)
 */
import { isDeepStrictEqual } from 'node:util';
import { MeshlessError, errorMessage } from '../errors.js';
import { PLUGIN_TYPE, type MeshlessEntry } from './entry.js';

/** Top-level conflist key holding the file's original bytes. */
export const RECORD_KEY = 'meshless.dev/original';

/** A parsed JSON object; values stay `unknown` until something reads them. */
export type JsonObject = Record<string, unknown>;

/** What install recorded about the file it first edited. */
export interface OriginalRecord {
  /** Base name of the original file (a `.conf` when we wrapped it). */
  readonly file: string;
  /** Its exact original content. */
  readonly content: string;
}

/** A config file, parsed and checked. Which kind is decided by the extension, as libcni does. */
export type CniConfig =
  | { readonly kind: 'conf'; readonly doc: JsonObject }
  | {
      readonly kind: 'conflist';
      readonly doc: JsonObject;
      readonly plugins: readonly JsonObject[];
    };

/** The result of an edit: what to write, and which file it replaces. */
export interface ConfigChange {
  /** Base name of the file to write (differs from the input when a `.conf` is wrapped or restored). */
  readonly fileName: string;
  /** Its full new content. */
  readonly text: string;
  /** The input file, to delete once `fileName` is written, when the name changed. */
  readonly replaces: string | undefined;
  /** False when the edit is a no-op (nothing to write). */
  readonly changed: boolean;
  /** Things the operator should know, e.g. why original bytes were not restored. */
  readonly warnings: readonly string[];
}

/** Options naming the file being edited (for messages and for `.conf` handling). */
export interface EditOptions {
  /** Base name in the conf dir. */
  readonly fileName: string;
  /** Full path, for messages only (default: `fileName`). */
  readonly path?: string | undefined;
}

function installError(message: string, cause?: unknown): MeshlessError {
  return new MeshlessError('MESHLESS_E_INSTALL', message, cause === undefined ? {} : { cause });
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isConflistName(fileName: string): boolean {
  return fileName.endsWith('.conflist');
}

/** `10-bridge.conf` -> `10-bridge.conflist` (also for `.json`). */
export function conflistNameFor(fileName: string): string {
  return fileName.replace(/\.(conf|json)$/, '') + '.conflist';
}

/** The canonical text we write: 2-space JSON and a trailing newline. */
export function renderConfig(doc: JsonObject): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/**
 * Parses and validates a config file's text. A `.conflist` needs a non-empty
 * `plugins` array of objects with a `type`; a `.conf` or `.json` needs a
 * `type`.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` naming the file and the fault.
 */
export function parseCniConfig(text: string, { fileName, path }: EditOptions): CniConfig {
  const where = path ?? fileName;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw installError(`${where} is not valid JSON: ${errorMessage(err)}`, err);
  }
  if (!isObject(doc)) throw installError(`${where} must hold a JSON object`);
  if (!isConflistName(fileName)) {
    if (typeof doc.type !== 'string' || doc.type === '')
      throw installError(
        `${where} has no "type": a .conf holds one plugin` +
          (Array.isArray(doc.plugins) ? ' (it looks like a conflist: name it .conflist)' : ''),
      );
    return { kind: 'conf', doc };
  }
  const plugins = doc.plugins;
  if (!Array.isArray(plugins))
    throw installError(`${where} has no "plugins" array, so it is not a valid conflist`);
  if (plugins.length === 0) throw installError(`${where} has an empty "plugins" list`);
  const checked: JsonObject[] = [];
  plugins.forEach((p: unknown, i) => {
    if (!isObject(p) || typeof p.type !== 'string' || p.type === '')
      throw installError(`${where}: plugins[${i}] is not an object with a "type"`);
    checked.push(p);
  });
  return { kind: 'conflist', doc, plugins: checked };
}

/** True for an entry of ours, whatever version of the installer wrote it. */
export function isOurEntry(plugin: JsonObject): boolean {
  return plugin.type === PLUGIN_TYPE;
}

/**
 * Wraps a single-plugin config into a conflist: `cniVersion` and `name`
 * move up (the name falls back to the file's base name when the conf has
 * none), the rest becomes `plugins[0]`. With `originalText`, the original is
 * recorded under RECORD_KEY so uninstall can restore it byte for byte.
 */
export function wrapConfIntoConflist(
  conf: JsonObject,
  { fileName, originalText }: EditOptions & { readonly originalText?: string },
): JsonObject {
  const { cniVersion, name, ...plugin } = conf;
  const list: JsonObject = {};
  if (cniVersion !== undefined) list.cniVersion = cniVersion;
  list.name = name ?? fileName.replace(/\.(conf|json)$/, '');
  list.plugins = [plugin];
  if (originalText !== undefined)
    list[RECORD_KEY] = { file: fileName, content: originalText } satisfies OriginalRecord;
  return list;
}

function readRecord(doc: JsonObject): OriginalRecord | undefined {
  const r = doc[RECORD_KEY];
  if (isObject(r) && typeof r.file === 'string' && typeof r.content === 'string')
    return { file: r.file, content: r.content };
  return undefined;
}

/**
 * The conflist without any entry of ours and without the record, key order
 * kept. `append` goes at the end of `plugins`.
 */
function rebuild(doc: JsonObject, others: readonly JsonObject[], append?: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === RECORD_KEY) continue;
    out[key] =
      key === 'plugins' ? (append === undefined ? [...others] : [...others, append]) : value;
  }
  return out;
}

/**
 * True when `record` still describes `base` (the conflist minus our entry
 * and record): nobody changed the file since install, so its original bytes
 * may be restored.
 */
function recordMatches(record: OriginalRecord, base: JsonObject, fileName: string): boolean {
  const original = parseQuietly(record.content, record.file);
  if (original === undefined) return false;
  if (isConflistName(record.file))
    return record.file === fileName && isDeepStrictEqual(base, original.doc);
  if (conflistNameFor(record.file) !== fileName) return false;
  return isDeepStrictEqual(base, wrapConfIntoConflist(original.doc, { fileName: record.file }));
}

function parseQuietly(text: string, fileName: string): CniConfig | undefined {
  try {
    return parseCniConfig(text, { fileName });
  } catch {
    return undefined;
  }
}

/**
 * Inserts `entry` at the end of the file's plugins, after removing any older
 * entry of ours. A `.conf` (or `.json`) is wrapped into `<base>.conflist`,
 * which replaces it. Idempotent.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` for a bad config.
 */
export function insertEntry(
  text: string,
  entry: MeshlessEntry,
  { fileName, path }: EditOptions,
): ConfigChange {
  const config = parseCniConfig(text, { fileName, path });
  if (config.kind === 'conf') {
    const list = wrapConfIntoConflist(config.doc, { fileName, originalText: text });
    // Replacing an existing key keeps its place, so the record stays last.
    const plugins = Array.isArray(list.plugins) ? list.plugins : [];
    const wrapped: JsonObject = { ...list, plugins: [...plugins, { ...entry }] };
    return {
      fileName: conflistNameFor(fileName),
      text: renderConfig(wrapped),
      replaces: fileName,
      changed: true,
      warnings: [],
    };
  }
  const others = config.plugins.filter((p) => !isOurEntry(p));
  const hadOurs = others.length !== config.plugins.length;
  const hadRecord = RECORD_KEY in config.doc;
  const base = rebuild(config.doc, others);
  const existing = readRecord(config.doc);
  const warnings: string[] = [];
  let record: OriginalRecord | undefined;
  if (existing !== undefined && recordMatches(existing, base, fileName)) record = existing;
  else if (!hadOurs && !hadRecord) record = { file: fileName, content: text };
  else if (hadRecord)
    warnings.push(
      `${path ?? fileName} changed since meshless was installed: its recorded original no longer ` +
        'applies, so uninstall will remove our entry but not restore the old bytes',
    );
  const out = rebuild(config.doc, others, { ...entry });
  if (record !== undefined) out[RECORD_KEY] = record;
  const newText = renderConfig(out);
  return { fileName, text: newText, replaces: undefined, changed: newText !== text, warnings };
}

/**
 * Removes every entry of ours. When the file is unchanged since install,
 * its recorded original comes back byte for byte (for a wrapped `.conf`:
 * under its old name, replacing the conflist). Otherwise our entry and
 * record go and the rest is kept. Idempotent; a file without any trace of
 * us is returned unchanged.
 *
 * @throws MeshlessError `MESHLESS_E_INSTALL` for a bad config.
 */
export function removeEntry(text: string, { fileName, path }: EditOptions): ConfigChange {
  const unchanged: ConfigChange = {
    fileName,
    text,
    replaces: undefined,
    changed: false,
    warnings: [],
  };
  const config = parseCniConfig(text, { fileName, path });
  if (config.kind === 'conf') return unchanged;
  const others = config.plugins.filter((p) => !isOurEntry(p));
  const hadOurs = others.length !== config.plugins.length;
  const hadRecord = RECORD_KEY in config.doc;
  if (!hadOurs && !hadRecord) return unchanged;
  const base = rebuild(config.doc, others);
  const record = readRecord(config.doc);
  if (record !== undefined && recordMatches(record, base, fileName))
    return {
      fileName: record.file,
      text: record.content,
      replaces: record.file === fileName ? undefined : fileName,
      changed: true,
      warnings: [],
    };
  if (others.length === 0)
    throw installError(
      `${path ?? fileName} would have no plugins left without ours, and it no longer matches the ` +
        'original recorded at install; restore it by hand',
    );
  const warnings = hadRecord
    ? [
        `${path ?? fileName} changed since meshless was installed: removed our entry and kept the ` +
          'other changes, instead of restoring the original bytes' +
          (record !== undefined && !isConflistName(record.file)
            ? ` (it stays a .conflist; it was ${record.file})`
            : ''),
      ]
    : [];
  return { fileName, text: renderConfig(base), replaces: undefined, changed: true, warnings };
}

/** The record install left in a config, if any (for the I/O shell's ownership checks). */
export function originalRecordOf(text: string): OriginalRecord | undefined {
  try {
    const doc: unknown = JSON.parse(text);
    return isObject(doc) ? readRecord(doc) : undefined;
  } catch {
    return undefined;
  }
}
