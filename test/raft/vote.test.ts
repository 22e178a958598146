// A vote survives a crash (Raft Figure 2: votedFor is persistent state). A voter grants
// candidate 1 in term 5, crashes right after its answer went out (the disk keeps only what
// was synced), restarts, and candidate 2 of the same term asks it: it must refuse. Run on
// the in-memory storage the simulator uses and on the real WAL on a crashing simulated
// disk; the planted bug (the vote never reaches the disk) must be caught on both.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftNode } from '../../src/runtime/node.js';
import { MemoryStorage } from '../../src/runtime/memory-storage.js';
import { WalStorage } from '../../src/runtime/wal-storage.js';
import type { RaftStorage } from '../../src/runtime/storage.js';
import { type RaftConfig, defaultTiming } from '../../src/raft/config.js';
import type { Message, VoteRequest } from '../../src/raft/messages.js';
import { Prng } from '../../src/stdx/prng.js';
import { index, nodeId, term } from '../../src/stdx/types.js';
import { simSetup, type SimSetup } from '../storage/helpers.js';

const voter = nodeId(3);

function voteRequest(from: number): VoteRequest {
  return { type: 'Vote', from: nodeId(from), to: voter, term: term(5), lastIndex: index(0), lastTerm: term(0), transfer: false };
}

/** One incarnation of the voter; returns the answers it sent to `request`. */
async function ask(sim: SimSetup, storage: RaftStorage, request: VoteRequest, unsafe: RaftConfig['unsafe']): Promise<Message[]> {
  const sent: Message[] = [];
  const config: RaftConfig = { ...defaultTiming, id: voter, voters: [nodeId(1), nodeId(2), voter], ...(unsafe ? { unsafe } : {}) };
  const node = await sim.go(
    RaftNode.open({
      config,
      prng: new Prng(7),
      clock: sim.scheduler.clock(),
      tickMs: 100,
      transport: { send: (_to, message) => sent.push(message) },
      storage,
      apply: () => {},
    }),
  );
  node.receive(request);
  // The answer goes out only after the hard state is saved (and synced, on the WAL).
  await sim.scheduler.waitFor(() => sent.some((m) => m.type === 'VoteResp'), 1000, 1);
  node.stop();
  return sent.filter((m) => m.type === 'VoteResp');
}

interface Disk {
  readonly sim: SimSetup;
  /** The storage a new incarnation opens after a crash. */
  restart(): RaftStorage;
}

function memoryDisk(): Disk {
  const sim = simSetup(1);
  let storage = new MemoryStorage();
  return {
    sim,
    restart: () => {
      storage = storage.copy();
      return storage;
    },
  };
}

function walDisk(): Disk {
  const sim = simSetup(1);
  let first = true;
  return {
    sim,
    restart: () => {
      if (!first) sim.disk.crash(); // only what was synced survives
      first = false;
      return new WalStorage(sim.disk, 'data', { wal: { segmentBytesMax: 1 << 16, recordBytesMax: 1 << 12, flushBytesMax: 1 << 12 } });
    },
  };
}

async function secondCandidateGranted(disk: Disk, unsafe?: RaftConfig['unsafe']): Promise<boolean> {
  const first = await ask(disk.sim, disk.restart(), voteRequest(1), unsafe);
  assert.deepEqual(
    first.map((m) => m.type === 'VoteResp' && !m.reject),
    [true],
    'the voter grants the first candidate',
  );
  const second = await ask(disk.sim, disk.restart(), voteRequest(2), unsafe);
  assert.equal(second.length, 1, 'the restarted voter answers the second candidate');
  const answer = second[0]!;
  assert.ok(answer.type === 'VoteResp');
  return !answer.reject;
}

for (const [name, disk] of [
  ['in-memory storage', memoryDisk],
  ['the WAL on a crashing disk', walDisk],
] as const) {
  test(`a restarted voter refuses a second candidate of the term it voted in (${name})`, async () => {
    assert.equal(await secondCandidateGranted(disk()), false);
  });

  test(`planted bug: a vote that never reaches the disk is given twice (${name})`, async () => {
    assert.equal(await secondCandidateGranted(disk(), { forgetVote: true }), true);
  });
}
