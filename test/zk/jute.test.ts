// The jute codec against the frames captured from a real ZooKeeper 3.8.0
// (docs/zookeeper.md §1.6, §1.7) and in round trips; random and truncated
// bodies only ever raise JuteError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JuteError, JuteReader } from '../../src/zk/jute.js';
import {
  decodeConnectRequest,
  decodeConnectResponse,
  decodeReplyHeader,
  decodeRequest,
  encodeConnectRequest,
  encodeConnectResponse,
  encodeNotification,
  encodeReply,
  encodeRequest,
  readMultiResults,
  readWatcherEvent,
  writeMultiResults,
  type Request,
} from '../../src/zk/records.js';
import { Err } from '../../src/zk/constants.js';

function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/[\s|]/g, ''), 'hex'));
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

test('the captured create request decodes field by field and encodes back to the same bytes', () => {
  // Frame body after the 4-byte length 0x34 (§1.6 worked example).
  const body = hex('00000001 00000001 | 00000003 2f6878 | 00000002 6869 | 00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65 | 00000000');
  assert.equal(body.length, 0x34);
  const frame = decodeRequest(body);
  assert.equal(frame.xid, 1);
  assert.equal(frame.opcode, 1);
  assert.deepEqual(frame.request, { type: 'create', opcode: 1, path: '/hx', data: new Uint8Array([0x68, 0x69]), acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }], flags: 0 });
  assert.equal(toHex(encodeRequest(1, frame.request)), toHex(body));
});

test('getData with a watch, the ping, and their replies match the captures', () => {
  const getData = decodeRequest(hex('00000002 00000004 00000003 2f6878 01'));
  assert.deepEqual(getData.request, { type: 'getData', path: '/hx', watch: true });
  const ping = decodeRequest(hex('fffffffe 0000000b'));
  assert.equal(ping.xid, -2);
  assert.deepEqual(ping.request, { type: 'ping' });
  assert.equal(toHex(encodeReply(-2, 0x74, 0)), 'fffffffe000000000000007400000000');
  assert.equal(toHex(encodeReply(1, 0x72, 0, (w) => w.string('/hx'))), '00000001000000000000007200000000000000032f6878');
  // An error reply is the header only, whatever body the caller offers.
  assert.equal(toHex(encodeReply(3, 0x72, Err.noNode, (w) => w.string('ignored'))), '000000030000000000000072ffffff9b');
});

test('the captured notification encodes exactly and decodes back', () => {
  const bytes = encodeNotification(-1, { type: 3, state: 3, path: '/hx' });
  assert.equal(toHex(bytes), toHex(hex('ffffffff ffffffffffffffff 00000000 00000003 00000003 00000003 2f6878')));
  const r = new JuteReader(bytes);
  assert.deepEqual(decodeReplyHeader(r), { xid: -1, zxid: -1n, err: 0 });
  assert.deepEqual(readWatcherEvent(r), { type: 3, state: 3, path: '/hx' });
});

test('the handshake: 44- and 45-byte requests; the reply echoes readOnly only if it was sent', () => {
  const base = { protocolVersion: 0, lastZxidSeen: 0n, timeOut: 30000, sessionId: 0n, passwd: new Uint8Array(16) };
  const without = encodeConnectRequest({ ...base, readOnly: undefined });
  const withByte = encodeConnectRequest({ ...base, readOnly: false });
  assert.equal(without.length, 44);
  assert.equal(withByte.length, 45);
  assert.equal(decodeConnectRequest(without).readOnly, undefined);
  assert.equal(decodeConnectRequest(withByte).readOnly, false);
  const password = hex('6a21ccd62553ddf5c0dec54baeea4dd0');
  const response = encodeConnectResponse({ protocolVersion: 0, timeOut: 30000, sessionId: 0x010000061e86000fn, passwd: password, readOnly: false });
  assert.equal(toHex(response), toHex(hex('00000000 00007530 010000061e86000f 00000010 6a21ccd62553ddf5c0dec54baeea4dd0 00')));
  assert.equal(encodeConnectResponse({ protocolVersion: 0, timeOut: 30000, sessionId: 1n, passwd: password, readOnly: undefined }).length, 36);
  assert.equal(decodeConnectResponse(response).sessionId, 0x010000061e86000fn);
  assert.throws(() => decodeConnectRequest(without.subarray(0, 40)), JuteError);
});

test('a failed multi reply matches the capture: ok, BADVERSION, RUNTIMEINCONSISTENCY, terminator', () => {
  const captured = hex('ffffffff 00 00000000 00000000 | ffffffff 00 ffffff99 ffffff99 | ffffffff 00 fffffffe fffffffe | ffffffff 01 ffffffff');
  const r = new JuteReader(captured);
  const results = readMultiResults(r);
  assert.deepEqual(results, [
    { type: 'error', err: 0 },
    { type: 'error', err: Err.badVersion },
    { type: 'error', err: Err.runtimeInconsistency },
  ]);
  const out = encodeReply(0, 0, 0, (w) => writeMultiResults(w, results));
  assert.equal(toHex(out.subarray(16)), toHex(captured));
  // The empty multi (§1.7).
  assert.equal(toHex(encodeReply(0, 0, 0, (w) => writeMultiResults(w, [])).subarray(16)), 'ffffffff01ffffffff');
});

test('every request type survives an encode/decode round trip', () => {
  const acl = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
  const requests: Request[] = [
    { type: 'create', opcode: 15, path: '/a/b-', data: null, acl, flags: 3 },
    { type: 'delete', path: '/a', version: -1 },
    { type: 'setData', path: '/a', data: new Uint8Array([1, 2, 3]), version: 7 },
    { type: 'check', path: '/a', version: 2 },
    { type: 'exists', path: '/a', watch: false },
    { type: 'getChildren2', path: '/', watch: true },
    { type: 'getACL', path: '/a' },
    { type: 'setACL', path: '/a', acl, version: 0 },
    { type: 'sync', path: '/' },
    {
      type: 'multi',
      ops: [
        { type: 'create', opcode: 1, path: '/m', data: new Uint8Array(0), acl, flags: 0 },
        { type: 'check', path: '/m', version: 0 },
        { type: 'delete', path: '/m', version: 0 },
      ],
    },
    { type: 'multi', ops: [] },
    { type: 'auth', authType: 0, scheme: 'digest', auth: new Uint8Array(Buffer.from('bob:secret')) },
    { type: 'setWatches', relativeZxid: 42n, dataWatches: ['/a'], existWatches: [], childWatches: ['/', '/b'] },
    { type: 'closeSession' },
  ];
  for (const [i, request] of requests.entries()) {
    const frame = decodeRequest(encodeRequest(i, request));
    assert.equal(frame.xid, i);
    assert.deepEqual(frame.request, request);
  }
  assert.deepEqual(decodeRequest(encodeRequest(9, { type: 'unimplemented', opcode: 999 })).request, { type: 'unimplemented', opcode: 999 });
});

test('kazoo-style nulls: a -1 string reads as empty where strings are expected, and a null path is an error', () => {
  const auth = decodeRequest(hex('fffffffc 00000064 00000000 ffffffff 00000000'));
  assert.deepEqual(auth.request, { type: 'auth', authType: 0, scheme: '', auth: new Uint8Array(0) });
  assert.throws(
    () => decodeRequest(hex('00000001 00000003 ffffffff 00')),
    (error: unknown) => error instanceof JuteError && /null/.test((error as Error).message),
  );
});

test('random and truncated request bodies only ever raise JuteError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeRequest(bytes);
      } catch (error) {
        assert.ok(error instanceof JuteError, `unexpected ${String(error)}`);
      }
    }),
    { numRuns: 5000, seed: 7 },
  );
  const whole = encodeRequest(5, { type: 'multi', ops: [{ type: 'setData', path: '/x', data: new Uint8Array(10), version: 1 }] });
  for (let cut = 0; cut < whole.length; cut++) assert.throws(() => decodeRequest(whole.subarray(0, cut)), JuteError);
  // A vector claiming more elements than bytes remain is refused before allocating.
  assert.throws(() => decodeRequest(hex('00000001 00000065 0000000000000000 7fffffff')), JuteError);
});
