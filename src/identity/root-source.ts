/**
 * Where the cluster root (certificate + key) comes from.
 *
 * Tried in order by {@link resolveRoot}: the configured files
 * (`ca.certFile`/`ca.keyFile`), the configured Kubernetes Secret
 * (`ca.secret`), a root this daemon generated earlier (under
 * `<stateDir>/ca/`), and, only when `ca.generate` is true, a newly generated
 * root persisted there (key file mode 0600).
 *
 * A generated root is only shared by daemons that share the state
 * directory: on a real multi-node cluster supply the root through a Secret,
 * or every node will trust only itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, errorMessage, isErrno } from '../errors.js';
import type { RootMaterial } from './certificate-authority.js';

/** A place a root may be found. */
export interface RootSource {
  /** Human description, e.g. `files /etc/meshless/ca.crt, /etc/meshless/ca.key`. */
  readonly description: string;
  /**
   * The root, or undefined when this source holds none (files or Secret
   * absent). Throws MeshlessError `MESHLESS_E_CA` when it exists but cannot
   * be read or is incomplete.
   */
  load(): Promise<RootMaterial | undefined>;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new MeshlessError('MESHLESS_E_CA', `cannot read ${path}: ${errorMessage(err)}`, {
      cause: err,
      details: { path },
    });
  }
}

async function readPair(
  certFile: string,
  keyFile: string,
  origin: string,
): Promise<RootMaterial | undefined> {
  const [certPem, keyPem] = await Promise.all([readOptional(certFile), readOptional(keyFile)]);
  if (certPem === undefined && keyPem === undefined) return undefined;
  if (certPem === undefined || keyPem === undefined)
    throw new MeshlessError(
      'MESHLESS_E_CA',
      `${origin}: ${certPem === undefined ? certFile : keyFile} is missing while ` +
        `${certPem === undefined ? keyFile : certFile} exists; the root needs both`,
      { details: { certFile, keyFile } },
    );
  return { certPem, keyPem, origin };
}

/** A root in two PEM files: `ca.certFile` (may hold several roots) and `ca.keyFile`. */
export class FileRootSource implements RootSource {
  readonly certFile: string;
  readonly keyFile: string;
  readonly description: string;

  constructor(certFile: string, keyFile: string) {
    this.certFile = certFile;
    this.keyFile = keyFile;
    this.description = `files ${certFile}, ${keyFile}`;
  }

  load(): Promise<RootMaterial | undefined> {
    return readPair(this.certFile, this.keyFile, `CA file ${this.certFile}`);
  }
}

/**
 * The root this daemon generated, under `<stateDir>/ca/` (`ca.crt`, and
 * `ca.key` with mode 0600 in a 0700 directory).
 */
export class GeneratedRootStore implements RootSource {
  readonly dir: string;
  readonly description: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'ca');
    this.description = `generated root in ${this.dir}`;
  }

  get certFile(): string {
    return join(this.dir, 'ca.crt');
  }

  get keyFile(): string {
    return join(this.dir, 'ca.key');
  }

  load(): Promise<RootMaterial | undefined> {
    return readPair(this.certFile, this.keyFile, `generated root ${this.certFile}`);
  }

  /**
   * Persists a root atomically: both files are written into a private
   * temporary directory that is then renamed into place, so a reader never
   * sees half a root. If another daemon sharing the state directory got
   * there first, its root wins and is returned instead.
   */
  async persist(material: RootMaterial): Promise<RootMaterial> {
    const parent = join(this.dir, '..');
    await mkdir(parent, { recursive: true, mode: 0o700 });
    const tmp = `${this.dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await mkdir(tmp, { mode: 0o700 });
      await writeFile(join(tmp, 'ca.key'), material.keyPem, { mode: 0o600, flag: 'wx' });
      await writeFile(join(tmp, 'ca.crt'), material.certPem, { mode: 0o644, flag: 'wx' });
      await rename(tmp, this.dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (isErrno(err, 'EEXIST', 'ENOTEMPTY')) {
        const existing = await this.load();
        if (existing) return existing;
      }
      throw new MeshlessError(
        'MESHLESS_E_CA',
        `cannot persist the generated root in ${this.dir}: ${errorMessage(err)}`,
        { cause: err, details: { path: this.dir } },
      );
    }
    return { ...material, origin: `generated root ${this.certFile}` };
  }
}

/** What {@link resolveRoot} found. */
export interface ResolvedRoot {
  readonly material: RootMaterial;
  /** The source it came from, or `generated` when it was just created. */
  readonly source: string;
  readonly generated: boolean;
}

/** Options for {@link resolveRoot}. */
export interface ResolveRootOptions {
  /** Sources the operator configured, in order of preference. */
  readonly configured: readonly RootSource[];
  readonly store: GeneratedRootStore;
  /** `ca.generate`: may a root be generated when none exists? */
  readonly generate: boolean;
  /** Makes a new root (certificateAuthority.generateRootCa, bound to the trust domain). */
  readonly generateRoot: () => Promise<RootMaterial>;
}

/** Finds the root, or generates and persists one when allowed. */
export async function resolveRoot(options: ResolveRootOptions): Promise<ResolvedRoot> {
  for (const source of [...options.configured, options.store]) {
    const material = await source.load();
    if (material) return { material, source: source.description, generated: false };
  }
  if (!options.generate) {
    const tried = [...options.configured, options.store].map((s) => s.description).join('; ');
    throw new MeshlessError(
      'MESHLESS_E_CA',
      `no cluster root CA found (tried: ${tried}); configure a cluster signer ("signer"), or, ` +
        'for a single node only, unsafeLocalRoot.certFile and keyFile, unsafeLocalRoot.secret, ' +
        'or unsafeLocalRoot.generate: true',
    );
  }
  const material = await options.store.persist(await options.generateRoot());
  return { material, source: options.store.description, generated: true };
}
