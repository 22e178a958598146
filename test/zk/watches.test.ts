// The member-local watch table: one-shot firing by ZooKeeper's rules (§2.4), one event for a
// connection in both tables, and forgetting a closed connection's watches.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventType, type EventTypeCode } from '../../src/zk/constants.js';
import { WatchManager, type Watcher } from '../../src/zk/watches.js';

function recorder(sessionId: number): Watcher & { events: string[] } {
  const events: string[] = [];
  return { watcherSessionId: sessionId, events, notify: (type: EventTypeCode, path: string) => void events.push(`${type} ${path}`) };
}

test('watches fire once, by kind; a delete reaches both tables but a connection hears it once', () => {
  const watches = new WatchManager();
  const a = recorder(1);
  const b = recorder(2);
  watches.addDataWatch('/x', a);
  watches.addDataWatch('/x', a);
  watches.addChildWatch('/x', a);
  watches.addChildWatch('/x', b);
  assert.deepEqual(watches.counts(), { paths: 1, watches: 3 });
  watches.trigger({ path: '/x', type: 'dataChanged' });
  watches.trigger({ path: '/x', type: 'dataChanged' });
  assert.deepEqual(a.events, [`${EventType.nodeDataChanged} /x`], 'one-shot');
  watches.addDataWatch('/x', a);
  watches.trigger({ path: '/x', type: 'deleted' });
  assert.deepEqual(a.events.slice(1), [`${EventType.nodeDeleted} /x`], 'data and child watch: one NodeDeleted');
  assert.deepEqual(b.events, [`${EventType.nodeDeleted} /x`]);
  assert.deepEqual(watches.counts(), { paths: 0, watches: 0 });
});

test('a closed connection is forgotten, and the others keep their watches', () => {
  const watches = new WatchManager();
  const a = recorder(1);
  const b = recorder(2);
  for (const path of ['/p', '/q']) {
    watches.addDataWatch(path, a);
    watches.addChildWatch(path, a);
  }
  watches.addDataWatch('/p', b);
  watches.removeWatcher(a);
  assert.deepEqual(watches.counts(), { paths: 1, watches: 1 });
  assert.deepEqual([...watches.byPath()], [['/p', new Set([2])]]);
  watches.trigger({ path: '/p', type: 'created' });
  watches.trigger({ path: '/q', type: 'childrenChanged' });
  assert.deepEqual(a.events, []);
  assert.deepEqual(b.events, [`${EventType.nodeCreated} /p`]);
  watches.removeWatcher(b);
  assert.deepEqual(watches.counts(), { paths: 0, watches: 0 });
});
