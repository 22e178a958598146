// X.509 v3 certificates made with Node's crypto alone (`flotilla cert init|issue`): Node 20
// can generate keys and parse certificates but has no API that signs one, so this file
// encodes the TBSCertificate in DER itself (RFC 5280 §4.1) and signs it with crypto.sign.
//
// Keys are ECDSA P-256 and signatures ecdsa-with-SHA256, which OpenSSL, Java (ZooKeeper's
// Netty client) and every TLS stack accept. A certificate authority gets basicConstraints
// CA:true (path length 0: it signs leaves only) and keyUsage keyCertSign|cRLSign; a member
// certificate serverAuth + clientAuth (one certificate serves its listeners and dials its
// peers), a client certificate clientAuth only. Both carry subject and authority key
// identifiers, so verifiers build the chain without guessing.
//
// The DER encoder writes only what these certificates need: definite lengths, INTEGER,
// BOOLEAN, BIT STRING, OCTET STRING, OBJECT IDENTIFIER, UTF8String, UTCTime/GeneralizedTime,
// SEQUENCE, SET and context-specific tags.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { assert } from '../stdx/assert.js';

export const certificateLimits = {
  daysMax: 100 * 365,
  caDaysDefault: 10 * 365,
  leafDaysDefault: 365,
  /** notBefore is set this far in the past, so a member whose clock lags still accepts a new certificate. */
  backdateMs: 60 * 60 * 1000,
  namesMax: 64,
  commonNameBytesMax: 64,
} as const;

// ---- DER ----

function derLength(length: number): Buffer {
  assert(Number.isSafeInteger(length) && length >= 0, 'a DER length is a natural number');
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

const sequence = (...items: Uint8Array[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Uint8Array[]) => tlv(0x31, Buffer.concat(items));
const octetString = (bytes: Uint8Array) => tlv(0x04, bytes);
const utf8String = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
const booleanTrue = () => tlv(0x01, Buffer.from([0xff]));
/** [n] EXPLICIT: a constructed context-specific tag around a whole encoding. */
const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive: the content under a context-specific tag. */
const implicitPrimitive = (n: number, content: Uint8Array) => tlv(0x80 | n, content);

/** A BIT STRING of whole bytes (no unused bits), as signatures and key identifiers are. */
function bitStringBytes(bytes: Uint8Array): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

/** A positive INTEGER from big-endian magnitude bytes (a leading zero added if the top bit is set). */
function integerBytes(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return tlv(0x02, (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  assert(arcs.length >= 2 && arcs.every((arc) => Number.isSafeInteger(arc) && arc >= 0), 'an OID has at least two natural arcs');
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128: number[] = [arc % 128];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) base128.unshift(0x80 | (rest % 128));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5), to the second, in UTC. */
function time(ms: number): Buffer {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // 2026-12-07T12:00:00.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, ''); // 20261207120000
  const year = Number(digits.slice(0, 4));
  return year < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1')) : tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

// ---- Certificates ----

const oid = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export type CertificateUse = 'ca' | 'member' | 'client';

export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateRequest {
  readonly commonName: string;
  readonly use: CertificateUse;
  /** IP addresses (v4 or v6) and DNS names for subjectAltName. */
  readonly ips?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly days: number;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(objectIdentifier(id), booleanTrue(), octetString(value)) : sequence(objectIdentifier(id), octetString(value));
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(objectIdentifier(oid.organization), utf8String('Flotilla'))), set(sequence(objectIdentifier(oid.commonName), utf8String(commonName))));
}

/** The bytes of an IP address for an iPAddress general name: 4 (IPv4) or 16 (IPv6). */
function ipBytes(text: string): Buffer {
  const version = isIP(text);
  if (version === 4) return Buffer.from(text.split('.').map(Number));
  if (version !== 6) throw new CertificateError(`"${text}" is not an IP address`);
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = groups(tail);
  if (right.some((group) => group.includes('.')) || left.some((group) => group.includes('.'))) throw new CertificateError(`"${text}": write an IPv4-mapped address in plain IPv4 form`);
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<string>(missing).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  assert(all.length === 8, 'an IPv6 address that isIP accepts has eight groups');
  for (const [i, group] of all.entries()) bytes.writeUInt16BE(Number.parseInt(group, 16), 2 * i);
  return bytes;
}

function subjectAltName(ips: readonly string[], dnsNames: readonly string[]): Buffer {
  for (const dns of dnsNames)
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(dns)) throw new CertificateError(`"${dns}" is not a DNS name`);
  return sequence(...dnsNames.map((dns) => implicitPrimitive(2, Buffer.from(dns, 'latin1'))), ...ips.map((ip) => implicitPrimitive(7, ipBytes(ip))));
}

function keyIdentifier(key: KeyObject): Buffer {
  // RFC 7093 §2 method: a hash of the whole SubjectPublicKeyInfo.
  return createHash('sha1')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest();
}

function extensionsFor(request: CertificateRequest, subjectKey: KeyObject, issuerKey: KeyObject): Buffer[] {
  const list = [
    extension(oid.subjectKeyIdentifier, false, octetString(keyIdentifier(subjectKey))),
    extension(oid.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyIdentifier(issuerKey)))),
  ];
  if (request.use === 'ca') {
    // CA:true, pathLenConstraint 0; keyUsage keyCertSign (bit 5) | cRLSign (bit 6): 0x06, one unused bit.
    list.push(extension(oid.basicConstraints, true, sequence(booleanTrue(), tlv(0x02, Buffer.from([0])))));
    list.push(extension(oid.keyUsage, true, tlv(0x03, Buffer.from([1, 0x06]))));
    return list;
  }
  list.push(extension(oid.basicConstraints, true, sequence()));
  // digitalSignature (bit 0) only: an ECDSA key signs the handshake and encrypts nothing.
  list.push(extension(oid.keyUsage, true, tlv(0x03, Buffer.from([7, 0x80]))));
  const purposes = request.use === 'member' ? [oid.serverAuth, oid.clientAuth] : [oid.clientAuth];
  list.push(extension(oid.extendedKeyUsage, false, sequence(...purposes.map(objectIdentifier))));
  const ips = request.ips ?? [];
  const dnsNames = request.dnsNames ?? [];
  if (ips.length + dnsNames.length > 0) list.push(extension(oid.subjectAltName, false, subjectAltName(ips, dnsNames)));
  return list;
}

function checkRequest(request: CertificateRequest): void {
  if (request.commonName.length === 0 || Buffer.byteLength(request.commonName) > certificateLimits.commonNameBytesMax) {
    throw new CertificateError(`the name must have 1 to ${certificateLimits.commonNameBytesMax} bytes`);
  }
  if (!Number.isSafeInteger(request.days) || request.days < 1 || request.days > certificateLimits.daysMax) throw new CertificateError(`days must be an integer from 1 to ${certificateLimits.daysMax}`);
  if ((request.ips?.length ?? 0) + (request.dnsNames?.length ?? 0) > certificateLimits.namesMax) throw new CertificateError(`at most ${certificateLimits.namesMax} --ip and --dns names`);
}

/**
 * Makes a key pair and a certificate for it, signed by `issuer` (or self-signed when
 * `issuer` is undefined, for a CA). Throws CertificateError on a bad request or issuer.
 */
export function makeCertificate(request: CertificateRequest, issuer: PemPair | undefined, nowMs: number = Date.now()): PemPair {
  checkRequest(request);
  assert((issuer === undefined) === (request.use === 'ca'), 'a CA signs itself; every other certificate has an issuer');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issuerCert = issuer === undefined ? undefined : parseIssuer(issuer);
  const signingKey = issuerCert === undefined ? privateKey : issuerCert.key;
  const issuerPublic = issuerCert === undefined ? publicKey : issuerCert.cert.publicKey;
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and 16 bytes long
  const algorithm = sequence(objectIdentifier(oid.ecdsaWithSha256));
  const tbs = sequence(
    explicit(0, tlv(0x02, Buffer.from([2]))), // v3
    integerBytes(serial),
    algorithm,
    issuerCert === undefined ? name(request.commonName) : issuerCert.subjectDer,
    sequence(time(nowMs - certificateLimits.backdateMs), time(nowMs + request.days * 24 * 60 * 60 * 1000)),
    name(request.commonName),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensionsFor(request, publicKey, issuerPublic))),
  );
  const signature = sign('sha256', tbs, signingKey);
  const der = sequence(tbs, algorithm, bitStringBytes(signature));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;
  // Postcondition: Node parses what we wrote, and the issuer's key verifies it.
  const parsed = new X509Certificate(certPem);
  assert(parsed.verify(issuerPublic), 'the new certificate verifies with its issuer key');
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The issuer's certificate, key, and subject Name (copied byte for byte into the new issuer field). */
function parseIssuer(issuer: PemPair): { cert: X509Certificate; key: KeyObject; subjectDer: Buffer } {
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(issuer.certPem);
    key = createPrivateKey(issuer.keyPem);
  } catch (error) {
    throw new CertificateError(`the CA certificate or key does not parse: ${(error as Error).message}`);
  }
  if (!cert.ca) throw new CertificateError('the CA certificate is not a CA (basicConstraints CA:false)');
  if (!cert.checkPrivateKey(key)) throw new CertificateError("the CA key is not the CA certificate's key");
  if (createPublicKey(key).asymmetricKeyType !== 'ec') throw new CertificateError('the CA key must be an EC key (flotilla cert init makes one)');
  return { cert, key, subjectDer: subjectNameDer(cert.raw) };
}

/** The subject Name of a DER certificate: the sixth element of its TBSCertificate. */
function subjectNameDer(der: Buffer): Buffer {
  const certificate = readElement(der, 0);
  const tbs = readElement(der, certificate.contentStart);
  let at = tbs.contentStart;
  // version [0], serialNumber, signature, issuer, validity, subject
  for (let i = 0; i < 5; i++) at = readElement(der, at).end;
  const subject = readElement(der, at);
  return der.subarray(at, subject.end);
}

function readElement(der: Buffer, at: number): { contentStart: number; end: number } {
  if (at + 2 > der.length) throw new CertificateError('the CA certificate is truncated');
  const first = der[at + 1]!;
  let length = first;
  let contentStart = at + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > der.length) throw new CertificateError('the CA certificate has a bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i]!;
    contentStart += count;
  }
  if (contentStart + length > der.length) throw new CertificateError('the CA certificate is truncated');
  return { contentStart, end: contentStart + length };
}
