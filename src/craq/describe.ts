// Deterministic one-line descriptions of CRAQ messages and replies (STYLE.md 11, 15), for
// logs and the golden interaction scripts (test/craq/testdata).

import { unreachable } from '../stdx/assert.js';
import type { ClientReply, PeerMessage } from './types.js';

export function describeMessage(message: PeerMessage): string {
  switch (message.type) {
    case 'propagate': {
      const writes = message.writes.map((write) => `${write.seq}:${write.key}@${write.version}=${JSON.stringify(write.value)}`).join(' ');
      return `propagate e=${message.epoch} [${writes}] high=${message.highestSeq}`;
    }
    case 'snapshot': {
      const objects = message.snapshot.objects.map((object) => `${object.key}@${object.version}`).join(' ');
      return `snapshot e=${message.epoch} seq=${message.snapshot.seq} [${objects}] high=${message.highestSeq}`;
    }
    case 'ack':
      return `ack e=${message.epoch} received=${message.receivedSeq} committed=${message.committedSeq}`;
    case 'query':
      return `query e=${message.epoch} id=${message.queryId} ${message.key}`;
    case 'query-reply':
      return `query-reply e=${message.epoch} id=${message.queryId} ${message.key}@${message.version}`;
    default:
      return unreachable(message, 'peer message');
  }
}

export function describeReply(reply: ClientReply): string {
  switch (reply.type) {
    case 'read':
      return `read ${reply.key}@${reply.version}=${reply.value === null ? 'absent' : JSON.stringify(reply.value)}${reply.clean ? '' : ' (dirty)'}`;
    case 'write':
      return `write ${reply.key}@${reply.version} seq=${reply.seq}`;
    case 'status':
      return `status id=${reply.id} e=${reply.epoch} members=${reply.members.join(',')} serving=${reply.serving} high=${reply.highestSeq} committed=${reply.committedSeq}`;
    case 'error':
      return `error ${reply.code}: ${reply.message}`;
    default:
      return unreachable(reply, 'client reply');
  }
}
