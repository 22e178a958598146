// ZooKeeper compatibility through the Java client's own shell: Debian's zkCli.sh 3.8.0 fed
// commands on stdin (zkcli.ts), against the target chosen by ZK_TARGET (target.ts). The
// expected lines are what zkCli printed against a real ZooKeeper 3.8.0.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseCreated, parseLs, parseStat, runZkCli, zkCliSkipReason, type ZkCliResult } from './zkcli.js';
import { startTarget, targetKinds, type TargetKind, targetSkipReason, type ZkTarget } from './target.js';

const TEST_TIMEOUT_MS = 60_000;
const ZKCLI_TIMEOUT_MS = 30_000;

/** The outputs of a run that must have completed, one per command. */
function outputsOf(result: ZkCliResult, count: number): ZkCliResult['commands'] {
  const context = `zkCli run:\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  assert.equal(result.timedOut, false, `zkCli timed out; ${context}`);
  assert.equal(result.commands.length, count, `one output per command; ${context}`);
  return result.commands;
}

function sequenceSuffix(path: string | undefined, prefix: string): number {
  if (path === undefined || !path.startsWith(prefix)) assert.fail(`${path} starts with ${prefix}`);
  const suffix = path.slice(prefix.length);
  assert.match(suffix, /^\d{10}$/, `${path}: a sequential node ends in 10 digits`);
  return Number(suffix);
}

describe('zkCli output parsers', () => {
  it('parseStat, parseLs and parseCreated read what zkCli 3.8 prints', () => {
    const stat = parseStat(
      [
        'cZxid = 0x2',
        'ctime = Fri Nov 27 20:45:23 UTC 2026',
        'mZxid = 0x3',
        'mtime = Fri Nov 27 20:45:23 UTC 2026',
        'pZxid = 0x2',
        'cversion = 0',
        'dataVersion = 1',
        'aclVersion = 0',
        'ephemeralOwner = 0x100008eec060000',
        'dataLength = 1',
        'numChildren = 0',
      ].join('\n'),
    );
    assert.ok(stat !== undefined);
    assert.equal(stat.cZxid, 2n);
    assert.equal(stat.mZxid, 3n);
    assert.equal(stat.dataVersion, 1);
    assert.equal(stat.ephemeralOwner, 0x100008eec060000n);
    assert.equal(parseStat('cZxid = 0x2\ndataVersion = 1'), undefined, 'an incomplete block is no Stat');
    assert.deepEqual(parseLs('[a, zookeeper]'), ['a', 'zookeeper']);
    assert.deepEqual(parseLs('[]'), []);
    assert.equal(parseLs('Node does not exist: /x'), undefined);
    assert.equal(parseCreated('Created /s-0000000001'), '/s-0000000001');
    assert.equal(parseCreated('Node already exists: /a'), undefined);
  });
});

function suite(kind: TargetKind): void {
  const skip = targetSkipReason(kind) ?? zkCliSkipReason();
  if (skip !== undefined) {
    it(`zkCli.sh against ${kind}`, { skip }, () => {});
  } else {
    describe(`zkCli.sh 3.8.0 against ${kind}`, () => {
      let target: ZkTarget | undefined;

      before(async () => {
        target = await startTarget(kind, { tickTimeMs: 200 });
      });

      after(async () => {
        await target?.stop();
      });

      function connectString(): string {
        assert.ok(target !== undefined, 'target started');
        return target.connectStrings[0]!;
      }

      it('create, get, set, stat, ls, create -s/-e, delete', { timeout: TEST_TIMEOUT_MS }, async () => {
        const commands = [
          'create /a "x"',
          'get /a',
          'set /a "y"',
          'get /a',
          'stat /a',
          'ls /',
          'create -s /s- "seq"',
          'create -e /e "eph"',
          'create -s -e /es- ""',
          'stat /e',
          'get /es-0000000003',
          'delete /a',
          'get /a',
          'ls /',
        ];
        const result = await runZkCli(connectString(), commands, { timeoutMs: ZKCLI_TIMEOUT_MS });
        const out = outputsOf(result, commands.length);
        assert.equal(result.code, 0, 'the last command (ls /) succeeded');
        assert.equal(out[0]!.stderr, 'Created /a');
        assert.equal(out[1]!.stdout, 'x');
        assert.deepEqual([out[2]!.stdout, out[2]!.stderr], ['', ''], 'set prints nothing');
        assert.equal(out[3]!.stdout, 'y');

        const stat = parseStat(out[4]!.stdout);
        assert.ok(stat !== undefined, `stat printed a Stat: ${out[4]!.stdout}`);
        assert.equal(stat.dataVersion, 1, 'one set');
        assert.equal(stat.dataLength, 1);
        assert.equal(stat.numChildren, 0);
        assert.equal(stat.cversion, 0);
        assert.equal(stat.aclVersion, 0);
        assert.equal(stat.ephemeralOwner, 0n);
        assert.ok(stat.mZxid > stat.cZxid, 'set moved mzxid past czxid');

        const rootChildren = parseLs(out[5]!.stdout);
        assert.ok(rootChildren !== undefined, `ls printed a list: ${out[5]!.stdout}`);
        assert.ok(rootChildren.includes('a') && rootChildren.includes('zookeeper'), `ls / shows a and zookeeper: ${rootChildren.join(', ')}`);

        // Root's sequence counter counts its child creations through the API (/zookeeper is
        // not one): a was the first (0), s- the second, e the third.
        assert.equal(sequenceSuffix(parseCreated(out[6]!.stderr), '/s-'), 1);
        assert.equal(out[7]!.stderr, 'Created /e');
        assert.equal(sequenceSuffix(parseCreated(out[8]!.stderr), '/es-'), 3);
        const ephemeral = parseStat(out[9]!.stdout);
        assert.ok(ephemeral !== undefined, `stat /e printed a Stat: ${out[9]!.stdout}`);
        assert.notEqual(ephemeral.ephemeralOwner, 0n, 'an ephemeral has an owner');
        assert.equal(out[10]!.stdout, '', 'empty data prints as an empty line');

        assert.deepEqual([out[11]!.stdout, out[11]!.stderr], ['', ''], 'delete prints nothing');
        assert.equal(out[12]!.stderr, 'Node does not exist: /a');
        assert.deepEqual(parseLs(out[13]!.stdout)?.sort(), ['e', 'es-0000000003', 's-0000000001', 'zookeeper']);
        assert.deepEqual(result.events, ['WatchedEvent state:SyncConnected type:None path:null', 'WatchedEvent state:Closed type:None path:null']);

        // quit closed the session, so its ephemerals are gone for the next client.
        const next = await runZkCli(connectString(), ['ls /'], { timeoutMs: ZKCLI_TIMEOUT_MS });
        assert.deepEqual(parseLs(outputsOf(next, 1)[0]!.stdout)?.sort(), ['s-0000000001', 'zookeeper']);
      });

      it("errors print the messages zkCli users know; the exit status is the last command's", { timeout: TEST_TIMEOUT_MS }, async () => {
        const commands = [
          'create /err "x"',
          'create /err "again"',
          'create /err/child',
          'delete /err',
          'set -v 7 /err "z"',
          'create -e /err-eph',
          'create /err-eph/child',
          'create /err-null',
          'get /err-null',
          'get /err-missing',
        ];
        const result = await runZkCli(connectString(), commands, { timeoutMs: ZKCLI_TIMEOUT_MS });
        const out = outputsOf(result, commands.length);
        assert.deepEqual(
          out.map((output) => output.stderr),
          [
            'Created /err',
            'Node already exists: /err',
            'Created /err/child',
            'Node not empty: /err',
            'version No is not valid : /err',
            'Created /err-eph',
            'Ephemerals cannot have children: /err-eph/child',
            'Created /err-null',
            '',
            'Node does not exist: /err-missing',
          ],
        );
        assert.equal(out[8]!.stdout, 'null', 'a node created without data has null data, printed as "null"');
        assert.equal(result.code, 1, 'the last command failed');
      });
    });
  }
}

// Both servers, unless ZK_TARGET names one.
for (const kind of targetKinds()) suite(kind);
