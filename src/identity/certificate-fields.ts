/**
 * The few X.509 fields SVID validation needs, read straight from DER.
 *
 * Validation runs on every handshake. Node's X509Certificate parses natively
 * but does not expose keyUsage bits, basicConstraints pathLen or SANs in a
 * form that can be trusted (`subjectAltName` is a display string);
 * @peculiar/x509 exposes them but costs about a millisecond per certificate.
 * This reader walks only the TBSCertificate's validity and extensions, is
 * strict (definite lengths, no duplicate extensions, known tags) and takes
 * microseconds. Callers parse the certificate with Node first, so the
 * overall structure and signature are checked there.
 */

/** Fields read from a certificate. Times are ms since the epoch. */
export interface CertificateFields {
  readonly notBefore: number;
  readonly notAfter: number;
  /** keyUsage bits as @peculiar/x509 `KeyUsageFlags` (bit i of the BIT STRING is 1 << i). */
  readonly keyUsage: number | undefined;
  readonly keyUsageCritical: boolean;
  /** basicConstraints; undefined when the extension is absent (a non-CA). */
  readonly basicConstraints:
    { readonly ca: boolean; readonly pathLength: number | undefined } | undefined;
  /** extendedKeyUsage OIDs in dotted form; undefined when absent. */
  readonly extendedKeyUsage: readonly string[] | undefined;
  /** Every uniformResourceIdentifier SAN, in order. */
  readonly uriSans: readonly string[];
  readonly sanCritical: boolean;
}

/** A DER element: its tag and where its content lies. */
export interface Tlv {
  readonly tag: number;
  /** Where the element itself (its tag) begins. */
  readonly offset: number;
  readonly start: number;
  readonly end: number;
}

class DerError extends Error {
  override name = 'DerError';
}

/** Reads one element at `offset`, which must end by `limit`. Throws on any DER violation. */
export function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  const tag = der[offset];
  const first = der[offset + 1];
  if (tag === undefined || first === undefined || offset + 2 > limit)
    throw new DerError(`truncated element at offset ${offset}`);
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  let length: number;
  let start = offset + 2;
  if (first < 0x80) {
    length = first;
  } else {
    const octets = first & 0x7f;
    if (octets === 0 || octets > 4)
      throw new DerError(`unsupported length form at offset ${offset}`);
    length = 0;
    for (let i = 0; i < octets; i++) {
      const b = der[start + i];
      if (b === undefined) throw new DerError(`truncated length at offset ${offset}`);
      length = length * 256 + b;
    }
    start += octets;
  }
  const end = start + length;
  if (end > limit) throw new DerError(`element at offset ${offset} overruns its container`);
  return { tag, offset, start, end };
}

/** The child elements of a constructed element. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const child = readTlv(der, p, parent.end);
    out.push(child);
    p = child.end;
  }
  return out;
}

function expect(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag)
    throw new DerError(
      `${what}: expected tag 0x${tag.toString(16)}, got ${tlv ? `0x${tlv.tag.toString(16)}` : 'nothing'}`,
    );
  return tlv;
}

function text(der: Uint8Array, tlv: Tlv): string {
  return Buffer.from(der.buffer, der.byteOffset + tlv.start, tlv.end - tlv.start).toString(
    'latin1',
  );
}

function hex(der: Uint8Array, tlv: Tlv): string {
  return Buffer.from(der.buffer, der.byteOffset + tlv.start, tlv.end - tlv.start).toString('hex');
}

function readTime(der: Uint8Array, tlv: Tlv | undefined, what: string): number {
  if (!tlv || (tlv.tag !== 0x17 && tlv.tag !== 0x18)) throw new DerError(`${what}: not a time`);
  const s = text(der, tlv);
  const m =
    tlv.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`${what}: malformed time "${s}"`);
  let year = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: UTCTime YY >= 50 is 19YY, else 20YY.
  if (tlv.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** An OBJECT IDENTIFIER's content in dotted form. */
export function decodeOid(der: Uint8Array, tlv: Tlv): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const b = der[i] as number;
    value = value * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join('.');
}

function readBoolean(der: Uint8Array, tlv: Tlv): boolean {
  if (tlv.end - tlv.start !== 1) throw new DerError('BOOLEAN of wrong length');
  return der[tlv.start] !== 0;
}

function readSmallInteger(der: Uint8Array, tlv: Tlv): number {
  const length = tlv.end - tlv.start;
  if (length < 1 || length > 4) throw new DerError('INTEGER out of range');
  if (((der[tlv.start] as number) & 0x80) !== 0) throw new DerError('negative INTEGER');
  let n = 0;
  for (let i = tlv.start; i < tlv.end; i++) n = n * 256 + (der[i] as number);
  return n;
}

const OID_KEY_USAGE = '551d0f';
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_SUBJECT_ALT_NAME = '551d11';
const OID_EXT_KEY_USAGE = '551d25';

/**
 * Reads the fields of a DER certificate. Throws an Error describing the
 * first structural problem.
 */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const cert = expect(readTlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate');
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i++; // [0] version
  i += 2; // serialNumber, signature
  i++; // issuer
  const validity = children(der, expect(fields[i++], 0x30, 'Validity'));
  const notBefore = readTime(der, validity[0], 'notBefore');
  const notAfter = readTime(der, validity[1], 'notAfter');
  i += 2; // subject, subjectPublicKeyInfo
  let extensions: Tlv | undefined;
  for (; i < fields.length; i++) {
    const f = fields[i] as Tlv;
    if (f.tag === 0xa3) extensions = expect(children(der, f)[0], 0x30, 'Extensions');
    else if (f.tag !== 0x81 && f.tag !== 0x82 && f.tag !== 0xa1 && f.tag !== 0xa2)
      throw new DerError(`unexpected TBSCertificate field tag 0x${f.tag.toString(16)}`);
  }

  let keyUsage: number | undefined;
  let keyUsageCritical = false;
  let basicConstraints: CertificateFields['basicConstraints'];
  let extendedKeyUsage: string[] | undefined;
  const uriSans: string[] = [];
  let sanCritical = false;
  const seen = new Set<string>();
  for (const ext of extensions ? children(der, extensions) : []) {
    const parts = children(der, expect(ext, 0x30, 'Extension'));
    const oid = hex(der, expect(parts[0], 0x06, 'extnID'));
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    seen.add(oid);
    let critical = false;
    let valueTlv = parts[1];
    if (valueTlv?.tag === 0x01) {
      critical = readBoolean(der, valueTlv);
      valueTlv = parts[2];
    }
    const value = expect(valueTlv, 0x04, 'extnValue');
    const inner = readTlv(der, value.start, value.end);
    if (inner.end !== value.end) throw new DerError(`extension ${oid}: trailing bytes`);
    switch (oid) {
      case OID_KEY_USAGE: {
        expect(inner, 0x03, 'keyUsage');
        let flags = 0;
        for (let b = inner.start + 1; b < inner.end; b++) {
          const byte = der[b] as number;
          for (let bit = 0; bit < 8; bit++) {
            if (byte & (0x80 >> bit)) flags |= 1 << ((b - inner.start - 1) * 8 + bit);
          }
        }
        keyUsage = flags;
        keyUsageCritical = critical;
        break;
      }
      case OID_BASIC_CONSTRAINTS: {
        let ca = false;
        let pathLength: number | undefined;
        for (const item of children(der, expect(inner, 0x30, 'basicConstraints'))) {
          if (item.tag === 0x01) ca = readBoolean(der, item);
          else if (item.tag === 0x02) pathLength = readSmallInteger(der, item);
          else throw new DerError('basicConstraints: unexpected element');
        }
        basicConstraints = { ca, pathLength };
        break;
      }
      case OID_EXT_KEY_USAGE: {
        extendedKeyUsage = children(der, expect(inner, 0x30, 'extKeyUsage')).map((o) =>
          decodeOid(der, expect(o, 0x06, 'KeyPurposeId')),
        );
        break;
      }
      case OID_SUBJECT_ALT_NAME: {
        sanCritical = critical;
        for (const name of children(der, expect(inner, 0x30, 'subjectAltName'))) {
          if (name.tag === 0x86) uriSans.push(text(der, name));
        }
        break;
      }
    }
  }
  return {
    notBefore,
    notAfter,
    keyUsage,
    keyUsageCritical,
    basicConstraints,
    extendedKeyUsage,
    uriSans,
    sanCritical,
  };
}

const OID_SUBJECT_KEY_IDENTIFIER = '551d0e';

/** What a CA certificate passes on to what it signs. */
export interface AuthorityFields {
  /** The subject Name, DER, byte for byte: the issuer field of what it signs. */
  readonly subject: Buffer;
  /** The subjectKeyIdentifier extension's key ID; undefined when absent. */
  readonly subjectKeyId: Buffer | undefined;
}

/**
 * Reads a CA certificate's subject and subject key identifier. Throws an
 * Error describing the first structural problem.
 */
export function readAuthorityFields(der: Uint8Array): AuthorityFields {
  const cert = expect(readTlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate');
  const fields = children(der, tbs);
  // [0] version, serialNumber, signature, issuer, validity, then the subject.
  const subject = expect(fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 4], 0x30, 'subject');
  let subjectKeyId: Buffer | undefined;
  const extensions = fields.find((f) => f.tag === 0xa3);
  const list = extensions ? expect(children(der, extensions)[0], 0x30, 'Extensions') : undefined;
  for (const ext of list ? children(der, list) : []) {
    const parts = children(der, expect(ext, 0x30, 'Extension'));
    if (hex(der, expect(parts[0], 0x06, 'extnID')) !== OID_SUBJECT_KEY_IDENTIFIER) continue;
    const value = expect(parts[parts.length - 1], 0x04, 'extnValue');
    const keyId = expect(readTlv(der, value.start, value.end), 0x04, 'subjectKeyIdentifier');
    subjectKeyId = Buffer.from(der.subarray(keyId.start, keyId.end));
  }
  return { subject: Buffer.from(der.subarray(subject.offset, subject.end)), subjectKeyId };
}
