// Requests on the client port (protocol.ts) handed to the key/value service (kv/). A frame
// that does not decode closes its connection (logged by the port); everything else gets a
// reply with the request's id, errors included. A command that does not decode as a kv
// command is answered 'invalid' (the envelope was fine, so the connection stays open).

import { unreachable } from '../stdx/assert.js';
import type { NodeId } from '../stdx/types.js';
import type { FramedConnection } from '../platform/server-client-port.js';
import type { Replica } from '../runtime/replica.js';
import { decodeCommand, encodeResult, KvDecodeError, type KvService, type KvCommand } from '../kv/index.js';
import type { Address } from './config.js';
import type { ProposalOutcome } from './metrics.js';
import { ShardDecodeError } from './shard-protocol.js';
import { decodeRequest, encodeResponse, ProtocolError, type ClientErrorCode, type ClientRequest, type ClientResponse } from './protocol.js';

export const clientHandlerLimits = {
  /** Requests one connection may have waiting for a reply; more are refused (overloaded). */
  inflightRequestsPerConnectionMax: 1024,
} as const;

export interface ClientHandlerContext {
  readonly replica: Replica;
  readonly kv: KvService;
  /** The client address of a member, if known. */
  clientAddressOf(id: NodeId): Address | undefined;
  recordOutcome(outcome: ProposalOutcome): void;
  /** The sharded service's requests (shard-host.ts), if this member hosts it. Throws ShardDecodeError. */
  readonly shard?: ((body: Uint8Array) => Promise<Uint8Array>) | undefined;
}

export class ClientHandler {
  private readonly inflight = new Map<number, number>();
  private accepting = true;

  constructor(private readonly context: ClientHandlerContext) {}

  /** From now on every request is answered 'stopped'. */
  stopAccepting(): void {
    this.accepting = false;
  }

  onFrame(connection: FramedConnection, body: Buffer): void {
    let request: ClientRequest;
    try {
      request = decodeRequest(body);
    } catch (error) {
      connection.close(error instanceof ProtocolError ? `malformed request: ${error.message}` : String(error));
      return;
    }
    const count = this.inflight.get(connection.id) ?? 0;
    if (count >= clientHandlerLimits.inflightRequestsPerConnectionMax) {
      this.reply(connection, this.error(request.id, 'overloaded', `more than ${clientHandlerLimits.inflightRequestsPerConnectionMax} requests in flight on this connection`));
      return;
    }
    this.inflight.set(connection.id, count + 1);
    void this.handle(request).then((response) => {
      const left = (this.inflight.get(connection.id) ?? 1) - 1;
      if (left > 0) this.inflight.set(connection.id, left);
      else this.inflight.delete(connection.id);
      this.reply(connection, response);
    });
  }

  onClose(connection: FramedConnection): void {
    this.inflight.delete(connection.id);
  }

  private reply(connection: FramedConnection, response: ClientResponse): void {
    connection.send(encodeResponse(response));
  }

  /** Never rejects: every outcome is a response. */
  private async handle(request: ClientRequest): Promise<ClientResponse> {
    if (!this.accepting) return this.error(request.id, 'stopped', 'the member is shutting down');
    switch (request.type) {
      case 'leader': {
        const leader = this.context.replica.raft.status().leader;
        return { id: request.id, type: 'leader', leader, client: this.context.clientAddressOf(leader) ?? null };
      }
      case 'kv':
        return this.submit(request);
      case 'shard':
        return this.submitShard(request);
      default:
        return unreachable(request, 'client request');
    }
  }

  private async submit(request: Extract<ClientRequest, { type: 'kv' }>): Promise<ClientResponse> {
    let command: KvCommand;
    try {
      command = decodeCommand(request.command);
    } catch (error) {
      if (!(error instanceof KvDecodeError)) throw error;
      this.context.recordOutcome('invalid');
      return this.error(request.id, 'invalid', `malformed kv command: ${error.message}`);
    }
    const response = await this.context.kv.handle({ op: command.op, session: command.session, consistency: request.consistency });
    this.context.recordOutcome(response.ok ? 'ok' : response.code);
    if (!response.ok) return this.error(request.id, response.code, response.message, response.leader);
    return { id: request.id, type: 'result', result: encodeResult(response.result), index: response.index };
  }

  private async submitShard(request: Extract<ClientRequest, { type: 'shard' }>): Promise<ClientResponse> {
    const shard = this.context.shard;
    if (shard === undefined) return this.error(request.id, 'invalid', 'this member hosts no sharded service (start it with --shards)');
    try {
      return { id: request.id, type: 'result', result: await shard(request.body), index: 0 };
    } catch (error) {
      if (!(error instanceof ShardDecodeError)) throw error;
      return this.error(request.id, 'invalid', `malformed shard request: ${error.message}`);
    }
  }

  private error(id: number, code: ClientErrorCode, message: string, leader?: NodeId): ClientResponse {
    const known = leader ?? this.context.replica.raft.status().leader;
    return { id, type: 'error', code, message, leader: known, client: this.context.clientAddressOf(known) ?? null };
  }
}
