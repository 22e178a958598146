// The client side of TLS for the commands that talk to a cluster (kv, zk, member, snapshot):
// etcdctl's flag names. --cacert alone checks the members' certificates; --cert and --key
// add a client certificate, for members started with --client-cert-auth. With --cacert,
// admin addresses are reached over https.

import type { Command } from 'commander';
import { type ClientTls, loadClientTls } from '../platform/tls.js';

export interface TlsFlags {
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
}

export function addTlsOptions(command: Command): Command {
  return command
    .option('--cacert <file>', "the CA certificate (PEM) that signed the members' certificates: connect with TLS")
    .option('--cert <file>', 'a client certificate (PEM), for members that require one (--client-cert-auth)')
    .option('--key <file>', "the client certificate's key (PEM)");
}

/** The TLS files the flags name, read and checked; undefined without --cacert. Throws TlsLoadError. */
export function clientTls(flags: TlsFlags): ClientTls | undefined {
  return loadClientTls({ cacert: flags.cacert, cert: flags.cert, key: flags.key });
}

/** http://admin/path, or https:// when TLS is on. */
export function adminUrl(admin: string, path: string, tls: ClientTls | undefined): string {
  return `${tls === undefined ? 'http' : 'https'}://${admin}${path}`;
}
