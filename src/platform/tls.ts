// TLS for every port of a member, and for the clients that dial them.
//
// One member certificate (with its key) serves all of a member's listeners and is also the
// client certificate it presents when it dials a peer or forwards an admin request; one CA
// file names the certificates it trusts. The peer port always demands a certificate from
// the cluster's CA (mutual TLS); the client, admin and ZooKeeper secure ports demand one
// only with clientCertAuth (etcd's --client-cert-auth), and accept any client otherwise.
//
// MemberTls.reload() reads the three files again (SIGHUP): every listener gets the new
// context through tls.Server#setSecureContext, and every connection dialled from then on
// uses it; open connections keep the context they were made with. A reload that fails
// (a missing file, a key that is not the certificate's, a certificate the CA did not
// sign) changes nothing and says why.

import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import type { ConnectionOptions, Server as TlsServer, TlsOptions, TLSSocket } from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';

export const tlsLimits = {
  /** A TLS handshake must finish within this long, so silent connections free their slot. */
  handshakeTimeoutMs: 5000,
  /** The largest PEM file read (a certificate chain or a CA bundle). */
  pemBytesMax: 1 << 20,
} as const;

export class TlsLoadError extends Error {
  override name = 'TlsLoadError';
}

/** The member's certificate, key and CA file names (--tls-cert, --tls-key, --tls-ca). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** The listeners a member secures; 'peer' always requires a client certificate. */
export type TlsPort = 'peer' | 'client' | 'admin' | 'zookeeper';

/** What a member's certificate says, for log lines. */
export interface CertificateSummary {
  readonly subject: string;
  readonly serial: string;
  readonly notAfter: string;
  readonly fingerprint256: string;
}

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  readonly summary: CertificateSummary;
}

function readPem(file: string, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new TlsLoadError(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (bytes.length > tlsLimits.pemBytesMax) throw new TlsLoadError(`the ${what} ${file} has ${bytes.length} bytes, more than ${tlsLimits.pemBytesMax}`);
  if (!bytes.toString('latin1').includes('-----BEGIN ')) throw new TlsLoadError(`the ${what} ${file} is not a PEM file`);
  return bytes;
}

/** Every certificate in a PEM bundle. */
function certificatesIn(pem: Buffer, file: string, what: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsLoadError(`the ${what} ${file} holds no certificate`);
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch (error) {
    throw new TlsLoadError(`the ${what} ${file} does not parse: ${(error as Error).message}`);
  }
}

/** Reads and checks the three files: the key is the certificate's, and the CA signed the certificate. */
function loadMaterial(files: TlsFiles): Material {
  const cert = readPem(files.certFile, 'certificate');
  const key = readPem(files.keyFile, 'key');
  const ca = readPem(files.caFile, 'CA file');
  const [leaf] = certificatesIn(cert, files.certFile, 'certificate');
  const authorities = certificatesIn(ca, files.caFile, 'CA file');
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsLoadError(`the key ${files.keyFile} does not parse (an unencrypted PEM key is needed): ${(error as Error).message}`);
  }
  if (!leaf!.checkPrivateKey(privateKey)) throw new TlsLoadError(`the key ${files.keyFile} is not the key of the certificate ${files.certFile}`);
  if (!authorities.some((authority) => leaf!.checkIssued(authority) && leaf!.verify(authority.publicKey))) {
    throw new TlsLoadError(`the certificate ${files.certFile} (${leaf!.subject.replace(/\n/g, ', ')}) is not signed by the CA in ${files.caFile}`);
  }
  return { cert, key, ca, summary: summarize(leaf!) };
}

function summarize(certificate: X509Certificate): CertificateSummary {
  return { subject: certificate.subject.replace(/\n/g, ', '), serial: certificate.serialNumber, notAfter: certificate.validTo, fingerprint256: certificate.fingerprint256 };
}

export class MemberTls {
  private readonly servers: { server: TlsServer; port: TlsPort }[] = [];

  private constructor(
    private readonly files: TlsFiles,
    readonly clientCertAuth: boolean,
    private material: Material,
  ) {}

  /** Loads and checks the files; throws TlsLoadError naming the file and the problem. */
  static load(files: TlsFiles, clientCertAuth: boolean): MemberTls {
    return new MemberTls(files, clientCertAuth, loadMaterial(files));
  }

  summary(): CertificateSummary {
    return this.material.summary;
  }

  /** Options for a listener of `port` (tls.createServer, https.createServer). */
  serverOptions(port: TlsPort): TlsOptions {
    const requireClient = port === 'peer' || this.clientCertAuth;
    return {
      cert: this.material.cert,
      key: this.material.key,
      ca: this.material.ca,
      requestCert: requireClient,
      // Checked in secure() instead, which logs who was refused and why: with true, Node
      // closes the connection without a word.
      rejectUnauthorized: false,
      handshakeTimeout: tlsLimits.handshakeTimeoutMs,
      minVersion: 'TLSv1.2',
    };
  }

  /** Options for dialling `host` (a peer, or another member's admin port) with the member certificate. */
  connectOptions(host: string): ConnectionOptions {
    return { cert: this.material.cert, key: this.material.key, ca: this.material.ca, minVersion: 'TLSv1.2', ...serverName(host) };
  }

  /** The member certificate as a client's (forwarding an admin request to another member). */
  clientTls(): ClientTls {
    return { ca: this.material.ca, cert: this.material.cert, key: this.material.key };
  }

  /** Whether connections to `port` must present a certificate the CA signed. */
  requiresClientCertificate(port: TlsPort): boolean {
    return port === 'peer' || this.clientCertAuth;
  }

  /**
   * Keeps `server`'s context current across reloads, and refuses (with a log line naming the
   * remote address and the reason) every connection whose handshake fails or whose client
   * certificate the CA did not sign. Call before any other 'secureConnection' listener is
   * added; those listeners must skip a socket that is already destroyed.
   */
  secure(server: TlsServer, port: TlsPort, logger: TlsLogger): void {
    this.servers.push({ server, port });
    server.on('connection', (raw: Socket) => remotes.set(raw, `${raw.remoteAddress}:${raw.remotePort}`));
    server.on('tlsClientError', (error, socket) => {
      logger.warn({ port, remote: remoteOf(socket), reason: describeTlsError(error) }, `refused a connection to the ${port} port at the TLS handshake`);
    });
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (!this.requiresClientCertificate(port) || socket.authorized) return;
      const presented = Object.keys(socket.getPeerCertificate()).length > 0;
      const reason = presented
        ? describeTlsError({ code: String(socket.authorizationError), message: String(socket.authorizationError) })
        : 'no client certificate was presented, and this port requires one';
      logger.warn({ port, remote: remoteOf(socket), reason }, `refused a connection to the ${port} port at the TLS handshake`);
      socket.destroy();
    });
  }

  /** Reads the files again; on success every tracked listener and every later dial uses them. */
  reload(): { ok: true; summary: CertificateSummary } | { ok: false; error: string } {
    let material: Material;
    try {
      material = loadMaterial(this.files);
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
    this.material = material;
    for (const { server, port } of this.servers) server.setSecureContext(this.serverOptions(port));
    return { ok: true, summary: material.summary };
  }
}

/** The CA (and optional client certificate) a client dials with: --cacert, --cert, --key. */
export interface ClientTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface ClientTlsFiles {
  readonly cacert?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

/**
 * Reads a client's TLS files; undefined when none is named (plain TCP). --cert and --key
 * go together, and need --cacert. Throws TlsLoadError naming the problem.
 */
export function loadClientTls(files: ClientTlsFiles): ClientTls | undefined {
  if (files.cacert === undefined && files.cert === undefined && files.key === undefined) return undefined;
  if (files.cacert === undefined) throw new TlsLoadError('--cert and --key need --cacert (the CA that signed the servers’ certificates)');
  if ((files.cert === undefined) !== (files.key === undefined)) throw new TlsLoadError('--cert and --key go together (a client certificate and its key)');
  const ca = readPem(files.cacert, 'CA file');
  certificatesIn(ca, files.cacert, 'CA file');
  if (files.cert === undefined || files.key === undefined) return { ca };
  const cert = readPem(files.cert, 'certificate');
  const key = readPem(files.key, 'key');
  const [leaf] = certificatesIn(cert, files.cert, 'certificate');
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsLoadError(`the key ${files.key} does not parse (an unencrypted PEM key is needed): ${(error as Error).message}`);
  }
  if (!leaf!.checkPrivateKey(privateKey)) throw new TlsLoadError(`the key ${files.key} is not the key of the certificate ${files.cert}`);
  return { ca, cert, key };
}

/** tls.connect options for a client dialling `host`. */
export function clientConnectOptions(tls: ClientTls, host: string): ConnectionOptions {
  return { ca: tls.ca, ...(tls.cert === undefined ? {} : { cert: tls.cert }), ...(tls.key === undefined ? {} : { key: tls.key }), minVersion: 'TLSv1.2', ...serverName(host) };
}

/** SNI carries DNS names only; an IP address is checked against the certificate's IP SANs. */
function serverName(host: string): { servername?: string } {
  return isIP(host) === 0 ? { servername: host } : {};
}

export interface TlsLogger {
  warn(fields: object, message: string): void;
}

/** Each accepted TCP socket's remote address, kept from 'connection' (a failed TLS socket may have lost it). */
const remotes = new WeakMap<object, string>();

function remoteOf(socket: TLSSocket): string {
  if (socket.remoteAddress !== undefined) return `${socket.remoteAddress}:${socket.remotePort}`;
  // A handshake that failed because the other side hung up leaves the TLS socket without a
  // handle; the TCP socket under it (Node's long-standing, undocumented _parent) was recorded.
  const parent = (socket as TLSSocket & { _parent?: object })._parent;
  return (parent === undefined ? undefined : remotes.get(parent)) ?? 'unknown (the connection already closed)';
}

const untrustedCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** Whether `error` happened in a TLS handshake (rather than, say, a refused TCP connection). */
export function isTlsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || untrustedCodes.has(code) || code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID';
}

/** Why a TLS handshake failed, in words an operator can act on (the code in parentheses). */
export function describeTlsError(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = (error as Error | undefined)?.message ?? String(error);
  if (typeof code !== 'string') return message;
  if (untrustedCodes.has(code)) return `the remote certificate is not signed by a trusted CA (${code})`;
  if (code === 'CERT_HAS_EXPIRED') return `the remote certificate has expired (${code})`;
  if (code === 'CERT_NOT_YET_VALID') return `the remote certificate is not valid yet (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the remote certificate does not name the address dialled: ${message}`;
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA') return `the remote side does not trust our certificate: it is not signed by a CA it trusts (${code})`;
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return `no client certificate was presented, and this port requires one (${code})`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
    return `the other side does not speak TLS (${code})`;
  if (code === 'ECONNRESET') return `the remote side closed the connection during the handshake (it may not trust our certificate) (${code})`;
  if (code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR') return `the remote side refused our certificate (${code})`;
  return `${message} (${code})`;
}
