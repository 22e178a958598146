// One member's watch table (../shared/reference/zookeeper.md §2.4). Watches are soft state
// local to the member holding the connection: two tables, data watches (set by getData and
// exists, also on a missing node) and child watches (set by getChildren), each path → the
// watchers (connections) on it. Standard watches are one-shot: firing removes them.
//
// A committed change fires, per the table in §2.4:
//   created(path)         data watches of path          NodeCreated
//   deleted(path)         data and child watches of path NodeDeleted (a watcher in both hears once)
//   dataChanged(path)     data watches of path          NodeDataChanged
//   childrenChanged(path) child watches of path         NodeChildrenChanged

import { EventType, type EventTypeCode } from './constants.js';
import type { WatchTrigger } from './types.js';

export interface Watcher {
  /** Delivers one notification; called synchronously while the change is applied. */
  notify(type: EventTypeCode, path: string): void;
  /** The session of the watching connection, for the wchp/wchc reports. */
  readonly watcherSessionId: number;
}

export class WatchManager {
  private readonly data = new Map<string, Set<Watcher>>();
  private readonly child = new Map<string, Set<Watcher>>();

  addDataWatch(path: string, watcher: Watcher): void {
    add(this.data, path, watcher);
  }

  addChildWatch(path: string, watcher: Watcher): void {
    add(this.child, path, watcher);
  }

  /** Forgets every watch of a connection (it closed). O(paths it watched) is not tracked: O(table). */
  removeWatcher(watcher: Watcher): void {
    for (const table of [this.data, this.child]) {
      for (const [path, watchers] of table) {
        watchers.delete(watcher);
        if (watchers.size === 0) table.delete(path);
      }
    }
  }

  /** Fires (and removes) the watches a committed change triggers. */
  trigger(change: WatchTrigger): void {
    switch (change.type) {
      case 'created':
        fire(this.data, change.path, EventType.nodeCreated, undefined);
        return;
      case 'dataChanged':
        fire(this.data, change.path, EventType.nodeDataChanged, undefined);
        return;
      case 'childrenChanged':
        fire(this.child, change.path, EventType.nodeChildrenChanged, undefined);
        return;
      case 'deleted': {
        const told = new Set<Watcher>();
        fire(this.data, change.path, EventType.nodeDeleted, told);
        fire(this.child, change.path, EventType.nodeDeleted, told);
        return;
      }
    }
  }

  /** Every watched path with the sessions watching it (data and child watches together). */
  byPath(): Map<string, Set<number>> {
    const out = new Map<string, Set<number>>();
    for (const table of [this.data, this.child]) {
      for (const [path, watchers] of table) {
        let sessions = out.get(path);
        if (sessions === undefined) out.set(path, (sessions = new Set()));
        for (const watcher of watchers) sessions.add(watcher.watcherSessionId);
      }
    }
    return out;
  }

  /** Paths watched and total watches, for the four-letter words. */
  counts(): { paths: number; watches: number } {
    let watches = 0;
    const paths = new Set<string>();
    for (const table of [this.data, this.child]) {
      for (const [path, watchers] of table) {
        paths.add(path);
        watches += watchers.size;
      }
    }
    return { paths: paths.size, watches };
  }
}

function add(table: Map<string, Set<Watcher>>, path: string, watcher: Watcher): void {
  let watchers = table.get(path);
  if (watchers === undefined) {
    watchers = new Set();
    table.set(path, watchers);
  }
  watchers.add(watcher);
}

function fire(table: Map<string, Set<Watcher>>, path: string, type: EventTypeCode, told: Set<Watcher> | undefined): void {
  const watchers = table.get(path);
  if (watchers === undefined) return;
  table.delete(path);
  for (const watcher of watchers) {
    if (told?.has(watcher) === true) continue;
    told?.add(watcher);
    watcher.notify(type, path);
  }
}
