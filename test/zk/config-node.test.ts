// /zookeeper/config's text and the reconfig planner (src/zk/config-node.ts): ZooKeeper's
// `server.N=host:port:port:role;client` lines, and each refusal with ZooKeeper's code.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configStat, formatConfig, parseServerSpec, planReconfig, type ReconfigArgs, type ZkConfigView } from '../../src/zk/config-node.js';
import { Err } from '../../src/zk/constants.js';
import { decodeRequest, encodeRequest } from '../../src/zk/records.js';

const view: ZkConfigView = {
  members: [
    { id: 1, role: 'participant', peer: { host: '10.0.0.1', port: 7000 }, client: { host: '10.0.0.1', port: 2181 } },
    { id: 2, role: 'participant', peer: { host: '::1', port: 7000 }, client: undefined },
    { id: 4, role: 'observer', peer: { host: 'db4', port: 7001 }, client: { host: 'db4', port: 2182 } },
  ],
  version: 0x1a,
};

const args = (fields: Partial<ReconfigArgs>): ReconfigArgs => ({ joiningServers: null, leavingServers: null, newMembers: null, curConfigId: -1n, ...fields });

test('formatConfig writes ZooKeeper dynamic-config lines and a hex version', () => {
  assert.equal(
    formatConfig(view),
    ['server.1=10.0.0.1:7000:7000:participant;10.0.0.1:2181', 'server.2=[::1]:7000:7000:participant', 'server.4=db4:7001:7001:observer;db4:2182', 'version=1a'].join('\n'),
  );
  const stat = configStat(view, 42);
  assert.equal(stat.mzxid, 0x1a);
  assert.equal(stat.version, -1);
  assert.equal(stat.aversion, -1);
  assert.equal(stat.dataLength, 42);
});

test('parseServerSpec takes QuorumServer forms and names what is wrong', () => {
  assert.deepEqual(parseServerSpec('server.5=h:1:2:observer;h:2181'), { id: 5, role: 'observer', peer: { host: 'h', port: 1 } });
  assert.deepEqual(parseServerSpec('server.5=h:1:2;2181'), { id: 5, role: 'participant', peer: { host: 'h', port: 1 } });
  assert.deepEqual(parseServerSpec('server.6=[fe80::1]:7000:7000:participant'), { id: 6, role: 'participant', peer: { host: 'fe80::1', port: 7000 } });
  assert.match(parseServerSpec('5=h:1:2') as string, /not server\.N=/);
  assert.match(parseServerSpec('server.0=h:1:2') as string, /not a server id/);
  assert.match(parseServerSpec('server.5=h:1') as string, /not host:port:port/);
  assert.match(parseServerSpec('server.5=h:1:2:leader') as string, /not host:port:port/);
  assert.match(parseServerSpec('server.5=h:0:2') as string, /port must be/);
});

test('planReconfig: one change, the current version or -1, else ZooKeeper error codes', () => {
  assert.deepEqual(planReconfig(args({ leavingServers: '2' }), view), { change: { type: 'leave', id: 2 }, expectedVersion: undefined });
  assert.deepEqual(planReconfig(args({ leavingServers: '2', curConfigId: 0x1an }), view), { change: { type: 'leave', id: 2 }, expectedVersion: 0x1a });
  assert.deepEqual(planReconfig(args({ joiningServers: 'server.3=h:1:1:participant;2181' }), view), {
    change: { type: 'join', id: 3, role: 'participant', peer: { host: 'h', port: 1 } },
    expectedVersion: undefined,
  });
  // An observer joining as a participant is a promotion.
  assert.deepEqual(planReconfig(args({ joiningServers: 'server.4=db4:7001:7001:participant' }), view), {
    change: { type: 'join', id: 4, role: 'participant', peer: { host: 'db4', port: 7001 } },
    expectedVersion: undefined,
  });
  const err = (fields: Partial<ReconfigArgs>) => {
    const plan = planReconfig(args(fields), view);
    assert.ok('err' in plan, String(Object.keys(fields)));
    return plan.err;
  };
  assert.equal(err({ leavingServers: '2', curConfigId: 0x19n }), Err.badVersion);
  assert.equal(err({}), Err.badArguments);
  assert.equal(err({ leavingServers: '1,2' }), Err.badArguments);
  assert.equal(err({ leavingServers: '1', joiningServers: 'server.3=h:1:1' }), Err.badArguments);
  assert.equal(err({ leavingServers: '3' }), Err.badArguments);
  assert.equal(err({ leavingServers: 'x' }), Err.badArguments);
  assert.equal(err({ newMembers: 'server.1=h:1:1' }), Err.badArguments);
  assert.equal(err({ joiningServers: 'server.1=h:1:1:participant' }), Err.badArguments);
  assert.equal(err({ joiningServers: 'server.1=h:1:1:observer' }), Err.badArguments);
});

test('ReconfigRequest round-trips through the jute codec', () => {
  const request = { type: 'reconfig' as const, joiningServers: 'server.4=h:1:1:participant;2181', leavingServers: null, newMembers: null, curConfigId: -1n };
  assert.deepEqual(decodeRequest(encodeRequest(7, request)), { xid: 7, opcode: 16, request });
});
