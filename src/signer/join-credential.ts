/**
 * Per-node join credentials (SPIRE's join_token attestor is the model) for
 * nodes without Kubernetes: the demo, the tests, bare nodes on file
 * discovery.
 *
 * `meshless ca join-token --node X --join-key FILE` makes:
 * - a node key pair (EC P-256), and
 * - a token `mjoin1.<claims>.<mac>`: claims {node, exp, key: the node's
 *   public key, jti}, MACed (HMAC-SHA256) with a key derived from the join
 *   key, a secret only the signer (and the operator issuing credentials)
 *   holds. It is not the root key, so a root rotation leaves credentials
 *   valid, and `meshless ca join-key` makes one.
 * The operator hands both to that node (the credential file).
 *
 * On every request the daemon sends the token with a fresh proof: its node
 * key's signature over (token, time, SHA-256 of the CSR it sends). So:
 * - a credential names one node and expires (default 24 h);
 * - a captured request is worthless: its proof is bound to its own CSR
 *   (whose private key never left the node), is accepted within
 *   {@link PROOF_WINDOW_MS} of its time only, and each replica refuses a
 *   proof it has already seen;
 * - the node key never leaves the node (the token alone proves nothing).
 * Replicas share nothing but the join key (mounted from a Secret), and the
 * CSR binding makes a replay on another replica useless.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import { MeshlessError, errorMessage } from '../errors.js';
import { generateP256Key, privateKeyPem, spkiOf } from '../identity/keys.js';
import {
  AttestationError,
  type AttestationRequest,
  type AttestedNode,
  type NodeAttestor,
} from './node-attestation.js';

const PREFIX = 'mjoin1';
/** How far a proof's time may be from the signer's clock. */
export const PROOF_WINDOW_MS = 5 * 60_000;
/** Default lifetime of a join credential. */
export const DEFAULT_JOIN_TTL_MS = 24 * 3_600_000;
/** The file format's apiVersion. */
export const JOIN_CREDENTIAL_API_VERSION = 'meshless.dev/join/v1';

/** What a join credential file holds. */
export interface JoinCredential {
  readonly apiVersion: typeof JOIN_CREDENTIAL_API_VERSION;
  readonly node: string;
  /** Expiry, RFC 3339. */
  readonly expiresAt: string;
  readonly token: string;
  /** The node key, PKCS#8 PEM. Secret. */
  readonly key: string;
}

interface Claims {
  readonly node: string;
  readonly exp: number;
  /** Node public key, SPKI DER base64url. */
  readonly key: string;
  readonly jti: string;
}

/** A new join key file's text: 32 random bytes, base64. */
export function newJoinKey(): string {
  return randomBytes(32).toString('base64') + '\n';
}

/** The MAC key of join tokens, from a join key file's text. */
export function joinMacKey(joinKeyText: string, origin = 'join key'): Buffer {
  const secret = Buffer.from(joinKeyText.trim(), 'base64');
  if (secret.length < 32)
    throw new MeshlessError(
      'MESHLESS_E_JOIN_CREDENTIAL',
      `${origin} must hold at least 32 random bytes, base64 (meshless ca join-key makes one)`,
    );
  return createHash('sha256')
    .update('meshless join credential MAC key v1\0')
    .update(secret)
    .digest();
}

function mac(macKey: Buffer, claims: string): string {
  return createHmac('sha256', macKey).update(`${PREFIX}.${claims}`).digest('base64url');
}

const NODE_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Options for {@link makeJoinCredential}. */
export interface MakeJoinCredentialOptions {
  readonly node: string;
  readonly macKey: Buffer;
  /** Current time, ms. */
  readonly now: number;
  readonly ttlMs?: number;
}

/** A new credential for one node (a new node key each time). */
export function makeJoinCredential(o: MakeJoinCredentialOptions): JoinCredential {
  if (!NODE_NAME.test(o.node))
    throw new MeshlessError('MESHLESS_E_JOIN_CREDENTIAL', `"${o.node}" is not a node name`);
  const ttl = o.ttlMs ?? DEFAULT_JOIN_TTL_MS;
  if (!(ttl > 0))
    throw new MeshlessError('MESHLESS_E_JOIN_CREDENTIAL', 'a join credential needs a positive TTL');
  const key = generateP256Key();
  const claims: Claims = {
    node: o.node,
    exp: o.now + ttl,
    key: spkiOf(key.publicKey).toString('base64url'),
    jti: randomBytes(12).toString('base64url'),
  };
  const encoded = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return {
    apiVersion: JOIN_CREDENTIAL_API_VERSION,
    node: o.node,
    expiresAt: new Date(claims.exp).toISOString(),
    token: `${PREFIX}.${encoded}.${mac(o.macKey, encoded)}`,
    key: privateKeyPem(key.privateKey),
  };
}

/** Parses a credential file's text; throws MESHLESS_E_JOIN_CREDENTIAL. */
export function parseJoinCredential(text: string, origin: string): JoinCredential {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new MeshlessError(
      'MESHLESS_E_JOIN_CREDENTIAL',
      `${origin} is not a JSON join credential: ${errorMessage(err)}`,
    );
  }
  const d = doc as Partial<Record<keyof JoinCredential, unknown>>;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    d.apiVersion !== JOIN_CREDENTIAL_API_VERSION ||
    typeof d.node !== 'string' ||
    typeof d.expiresAt !== 'string' ||
    typeof d.token !== 'string' ||
    typeof d.key !== 'string'
  )
    throw new MeshlessError(
      'MESHLESS_E_JOIN_CREDENTIAL',
      `${origin} is not a ${JOIN_CREDENTIAL_API_VERSION} join credential (node, expiresAt, token, key)`,
    );
  return d as JoinCredential;
}

function proofMessage(token: string, iat: number, csr: string): Buffer {
  const csrDigest = createHash('sha256').update(csr, 'utf8').digest('hex');
  return Buffer.from(`meshless join proof v1\n${token}\n${iat}\n${csrDigest}`);
}

/**
 * The bearer credential for one request: the token, the time and the node
 * key's signature binding them to this CSR.
 */
export function joinBearer(credential: JoinCredential, csr: string, now: number): string {
  const key = createPrivateKey(credential.key);
  const iat = Math.floor(now);
  const proof = sign('sha256', proofMessage(credential.token, iat, csr), key).toString('base64url');
  return `${credential.token}.${iat}.${proof}`;
}

/** Options of {@link JoinCredentialAttestor}. */
export interface JoinCredentialAttestorOptions {
  readonly macKey: Buffer;
}

/** Checks join credentials; see the file comment. */
export class JoinCredentialAttestor implements NodeAttestor {
  readonly method = 'join-credential' as const;
  readonly #macKey: Buffer;
  /** Proofs seen, with when they stop being acceptable anyway. */
  readonly #seen = new Map<string, number>();

  constructor(o: JoinCredentialAttestorOptions) {
    this.#macKey = o.macKey;
  }

  accepts(credential: string): boolean {
    return credential.startsWith(`${PREFIX}.`);
  }

  attest(req: AttestationRequest): Promise<AttestedNode> {
    try {
      return Promise.resolve(this.#attest(req));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #attest(req: AttestationRequest): AttestedNode {
    const parts = req.credential.split('.');
    if (parts.length !== 5 || parts[0] !== PREFIX)
      throw new AttestationError(
        'malformed',
        'a join bearer is mjoin1.<claims>.<mac>.<time>.<proof>',
      );
    const [, encoded = '', tag = '', iatText = '', proof = ''] = parts;
    const expected = Buffer.from(mac(this.#macKey, encoded));
    const given = Buffer.from(tag);
    if (expected.length !== given.length || !timingSafeEqual(expected, given))
      throw new AttestationError(
        'bad_signature',
        "the join token was not issued with this signer's root (MAC mismatch)",
      );
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Claims;
    } catch (err) {
      throw new AttestationError('malformed', 'the join token claims are not JSON', err);
    }
    if (
      typeof claims.node !== 'string' ||
      !NODE_NAME.test(claims.node) ||
      typeof claims.exp !== 'number' ||
      typeof claims.key !== 'string' ||
      typeof claims.jti !== 'string'
    )
      throw new AttestationError('malformed', 'the join token claims are incomplete');
    if (req.now >= claims.exp)
      throw new AttestationError(
        'expired',
        `the join credential of node ${claims.node} expired at ${new Date(claims.exp).toISOString()}`,
      );
    const iat = Number(iatText);
    if (!Number.isSafeInteger(iat))
      throw new AttestationError('malformed', 'the join proof time is not an integer');
    if (Math.abs(req.now - iat) > PROOF_WINDOW_MS)
      throw new AttestationError(
        iat > req.now ? 'not_yet_valid' : 'expired',
        `the join proof is dated ${new Date(iat).toISOString()}, more than ${PROOF_WINDOW_MS / 1000} s from the signer's clock`,
      );
    let nodeKey: KeyObject;
    try {
      nodeKey = createPublicKey({
        key: Buffer.from(claims.key, 'base64url'),
        format: 'der',
        type: 'spki',
      });
    } catch (err) {
      throw new AttestationError('malformed', 'the join token carries no readable node key', err);
    }
    let ok = false;
    try {
      ok = verify(
        'sha256',
        proofMessage(`${PREFIX}.${encoded}.${tag}`, iat, req.csr),
        nodeKey,
        Buffer.from(proof, 'base64url'),
      );
    } catch {
      ok = false;
    }
    if (!ok)
      throw new AttestationError(
        'bad_signature',
        'the join proof does not verify with the node key for this CSR (a replayed or altered request?)',
      );
    this.#prune(req.now);
    if (this.#seen.has(proof))
      throw new AttestationError('replayed', 'this join proof was already used');
    this.#seen.set(proof, iat + PROOF_WINDOW_MS);
    return { node: claims.node, method: this.method, caller: `join:${claims.jti}` };
  }

  #prune(now: number): void {
    for (const [proof, until] of this.#seen) if (until < now) this.#seen.delete(proof);
  }
}
