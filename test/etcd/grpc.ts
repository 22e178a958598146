// etcd's gRPC services called directly from a test (@grpc/grpc-js with etcd's .proto files),
// for what etcdctl cannot do: send a token to another member, watch with progress_notify.

import { dirname } from 'node:path';
import { type ChannelCredentials, type ClientDuplexStream, credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { etcdProtoFile } from '../../src/platform/grpc-host.js';

export type Callback = (error: ServiceError | null, reply: Record<string, unknown>) => void;
export type Unary = (request: object, metadata: Metadata, callback: Callback) => void;
export interface Services {
  readonly auth: Record<string, Unary>;
  readonly kv: Record<string, Unary>;
  readonly maintenance: Record<string, Unary>;
  readonly watch: { Watch(metadata: Metadata): ClientDuplexStream<object, Record<string, unknown>> };
  close(): void;
}

export function services(endpoint: string): Services {
  const definition = loadSync(etcdProtoFile(), { includeDirs: [dirname(etcdProtoFile())], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pb = (loadPackageDefinition(definition) as unknown as Record<string, Record<string, new (address: string, credentials: ChannelCredentials) => never>>)['etcdserverpb']!;
  const make = (name: string) => new pb[name]!(endpoint, credentials.createInsecure()) as Record<string, Unary> & { close(): void };
  const auth = make('Auth');
  const kv = make('KV');
  const watch = make('Watch') as unknown as Services['watch'] & { close(): void };
  const maintenance = make('Maintenance');
  return {
    auth,
    kv,
    watch,
    maintenance,
    close: () => {
      for (const client of [auth, kv, watch, maintenance]) client.close();
    },
  };
}

export function call(client: Record<string, Unary>, method: string, request: object, token?: string): Promise<Record<string, unknown>> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('token', token);
  return new Promise((resolve, reject) => client[method]!.call(client, request, metadata, (error, reply) => (error === null ? resolve(reply) : reject(error))));
}
