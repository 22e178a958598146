// A gRPC server (HTTP/2, @grpc/grpc-js) for services described by .proto files
// (@grpc/proto-loader), with handlers injected by the layer above: etcd's v3 API
// (server/etcd-api.ts) is served through it.
//
// Messages arrive as plain objects with the proto's field names (keepCase), 64-bit integers
// as decimal strings (no precision lost: etcd's lease ids use all 64 bits), bytes as
// Buffers, enums as their names, every field present (defaults). A handler answers with an
// object of the same shape, or throws GrpcStatusError for a gRPC status and message;
// anything else it throws becomes INTERNAL, logged, and the member keeps serving.
// Malformed HTTP/2 or protobuf frames are refused by grpc-js itself (INTERNAL or a reset
// stream), and messages over `receiveBytesMax` with RESOURCE_EXHAUSTED.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const GrpcCode = {
  ok: 0,
  cancelled: 1,
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  notFound: 5,
  alreadyExists: 6,
  permissionDenied: 7,
  resourceExhausted: 8,
  failedPrecondition: 9,
  aborted: 10,
  outOfRange: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

export class GrpcStatusError extends Error {
  override name = 'GrpcStatusError';
  constructor(
    readonly code: GrpcCode,
    message: string,
  ) {
    super(message);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: decoded protobuf messages are plain objects of the proto's shape
export type GrpcMessage = Record<string, any>;

/** What a handler may know of its call besides the message: the request's metadata (headers). */
export interface GrpcCall {
  /** The first value of a text metadata key (lower case), undefined if absent. */
  metadata(key: string): string | undefined;
}

export type UnaryHandler = (request: GrpcMessage, call: GrpcCall) => Promise<GrpcMessage>;

/** One bidirectional stream: the handler gets each client message and writes replies. */
export interface GrpcStream extends GrpcCall {
  write(message: GrpcMessage): void;
  /** Ends the stream with a status (OK by default). */
  end(error?: GrpcStatusError): void;
  /** Called when the client ends or cancels the stream. */
  onClose(listener: () => void): void;
}
export type StreamHandler = (stream: GrpcStream) => (message: GrpcMessage) => void;

export interface GrpcServiceHandlers {
  readonly unary?: Readonly<Record<string, UnaryHandler>>;
  readonly streams?: Readonly<Record<string, StreamHandler>>;
}

export interface GrpcLogger {
  warn(fields: object, message: string): void;
}

export interface GrpcHostOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** The .proto file (its imports are looked up beside it). */
  readonly protoFile: string;
  /** Fully qualified service name ("etcdserverpb.KV") → its handlers; methods left out answer UNIMPLEMENTED. */
  readonly services: Readonly<Record<string, GrpcServiceHandlers>>;
  readonly receiveBytesMax: number;
  /** TLS: the server's key and certificate (PEM), and the CA to check client certificates against if `clientCertAuth`. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer; readonly clientCertAuth: boolean };
  readonly logger: GrpcLogger;
}

/** The directory of the etcd .proto files shipped with Flotilla (proto/etcd, Apache-2.0). */
export function etcdProtoFile(): string {
  // From src/platform (tsx) the checkout is two levels up; from <build dir>/src/platform three.
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..'), join(here, '..', '..', '..')].map((root) => join(root, 'proto', 'etcd', 'rpc.proto'));
  const found = candidates.find((file) => existsSync(file));
  if (found === undefined) throw new Error(`etcd's .proto files are missing: looked for ${candidates.join(' and ')}`);
  return found;
}

export class GrpcHost {
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(options: GrpcHostOptions): Promise<GrpcHost> {
    const definition = protoLoader.loadSync(options.protoFile, {
      includeDirs: [dirname(options.protoFile)],
      keepCase: true,
      longs: String,
      enums: String,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': options.receiveBytesMax, 'grpc.max_send_message_length': -1 });
    for (const [name, handlers] of Object.entries(options.services)) {
      const service = lookup(loaded, name);
      const implementation: grpc.UntypedServiceImplementation = {};
      for (const [method, handler] of Object.entries(handlers.unary ?? {})) implementation[method] = unary(handler, `${name}.${method}`, options.logger);
      for (const [method, handler] of Object.entries(handlers.streams ?? {})) implementation[method] = stream(handler, `${name}.${method}`, options.logger);
      server.addService(service, implementation);
    }
    const credentials =
      options.tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(options.tls.ca, [{ private_key: options.tls.key, cert_chain: options.tls.cert }], options.tls.clientCertAuth);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${options.host}:${options.port}`, credentials, (error, bound) => (error === null ? resolve(bound) : reject(error)));
    });
    return new GrpcHost(server, port);
  }

  /** Stops accepting, ends every call in flight. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      // Streams (watches) never end by themselves: force them after a moment.
      setTimeout(() => this.server.forceShutdown(), 200).unref();
    });
  }
}

function lookup(loaded: grpc.GrpcObject, name: string): grpc.ServiceDefinition {
  let node: unknown = loaded;
  for (const part of name.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  const service = (node as { service?: grpc.ServiceDefinition } | undefined)?.service;
  if (service === undefined) throw new Error(`${name} is not a service in the proto files`);
  return service;
}

function toStatus(error: unknown, method: string, logger: GrpcLogger): { code: number; details: string } {
  if (error instanceof GrpcStatusError) return { code: error.code, details: error.message };
  logger.warn({ method, error: error instanceof Error ? error.message : String(error) }, 'a gRPC handler failed');
  return { code: GrpcCode.internal, details: `internal error in ${method}` };
}

function callInfo(metadata: grpc.Metadata): GrpcCall {
  return {
    metadata: (key) => {
      const value = metadata.get(key)[0];
      return typeof value === 'string' ? value : undefined;
    },
  };
}

function unary(handler: UnaryHandler, method: string, logger: GrpcLogger): grpc.handleUnaryCall<GrpcMessage, GrpcMessage> {
  return (call, callback) => {
    handler(call.request, callInfo(call.metadata)).then(
      (reply) => callback(null, reply),
      (error: unknown) => callback(toStatus(error, method, logger)),
    );
  };
}

function stream(handler: StreamHandler, method: string, logger: GrpcLogger): grpc.handleBidiStreamingCall<GrpcMessage, GrpcMessage> {
  return (call) => {
    let ended = false;
    const listeners: Array<() => void> = [];
    const closed = () => {
      if (ended) return;
      ended = true;
      for (const listener of listeners) listener();
    };
    const wrapper: GrpcStream = {
      write: (message) => {
        if (!ended) call.write(message);
      },
      end: (error) => {
        if (ended) return;
        if (error === undefined) call.end();
        else call.emit('error', { code: error.code, details: error.message });
        closed();
      },
      onClose: (listener) => listeners.push(listener),
      ...callInfo(call.metadata),
    };
    let onMessage: (message: GrpcMessage) => void;
    try {
      onMessage = handler(wrapper);
    } catch (error) {
      call.emit('error', toStatus(error, method, logger));
      return;
    }
    call.on('data', (message: GrpcMessage) => {
      try {
        onMessage(message);
      } catch (error) {
        wrapper.end(new GrpcStatusError(GrpcCode.internal, toStatus(error, method, logger).details));
      }
    });
    call.on('end', () => {
      if (!ended) call.end();
      closed();
    });
    call.on('cancelled', closed);
    call.on('error', closed);
  };
}
