// One member's watch table (docs/zookeeper.md §2.4). Watches are soft state
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
  private readonly data = new WatchTable();
  private readonly child = new WatchTable();

  addDataWatch(path: string, watcher: Watcher): void {
    this.data.add(path, watcher);
  }

  addChildWatch(path: string, watcher: Watcher): void {
    this.child.add(path, watcher);
  }

  /** Forgets every watch of a connection (it closed): O(the paths it watches). */
  removeWatcher(watcher: Watcher): void {
    this.data.removeWatcher(watcher);
    this.child.removeWatcher(watcher);
  }

  /** Fires (and removes) the watches a committed change triggers. */
  trigger(change: WatchTrigger): void {
    switch (change.type) {
      case 'created':
        return notifyAll(this.data.take(change.path), EventType.nodeCreated, change.path);
      case 'dataChanged':
        return notifyAll(this.data.take(change.path), EventType.nodeDataChanged, change.path);
      case 'childrenChanged':
        return notifyAll(this.child.take(change.path), EventType.nodeChildrenChanged, change.path);
      case 'deleted': {
        // A connection watching both tables hears once.
        const watchers = new Set([...this.data.take(change.path), ...this.child.take(change.path)]);
        return notifyAll(watchers, EventType.nodeDeleted, change.path);
      }
    }
  }

  /** Paths watched and total watches, for the four-letter words. */
  counts(): { paths: number; watches: number } {
    const paths = new Set([...this.data.paths(), ...this.child.paths()]);
    return { paths: paths.size, watches: this.data.size + this.child.size };
  }

  /** Every watched path with the sessions watching it (data and child watches together). */
  byPath(): Map<string, Set<number>> {
    const out = new Map<string, Set<number>>();
    for (const table of [this.data, this.child]) {
      for (const [path, watchers] of table.entries()) {
        let sessions = out.get(path);
        if (sessions === undefined) {
          sessions = new Set();
          out.set(path, sessions);
        }
        for (const watcher of watchers) sessions.add(watcher.watcherSessionId);
      }
    }
    return out;
  }
}

/** One kind of watch: path → watchers, and each watcher's paths so a closing connection is cheap to forget. */
class WatchTable {
  private readonly byPath = new Map<string, Set<Watcher>>();
  private readonly byWatcher = new Map<Watcher, Set<string>>();
  /** Invariant: the number of (path, watcher) pairs. */
  size = 0;

  add(path: string, watcher: Watcher): void {
    let watchers = this.byPath.get(path);
    if (watchers === undefined) {
      watchers = new Set();
      this.byPath.set(path, watchers);
    }
    if (watchers.has(watcher)) return;
    watchers.add(watcher);
    let paths = this.byWatcher.get(watcher);
    if (paths === undefined) {
      paths = new Set();
      this.byWatcher.set(watcher, paths);
    }
    paths.add(path);
    this.size++;
  }

  /** Removes and returns the watchers of `path` (one-shot watches fire once). */
  take(path: string): ReadonlySet<Watcher> {
    const watchers = this.byPath.get(path);
    if (watchers === undefined) return new Set();
    this.byPath.delete(path);
    for (const watcher of watchers) this.forget(watcher, path);
    return watchers;
  }

  removeWatcher(watcher: Watcher): void {
    const paths = this.byWatcher.get(watcher);
    if (paths === undefined) return;
    this.byWatcher.delete(watcher);
    for (const path of paths) {
      const watchers = this.byPath.get(path)!;
      watchers.delete(watcher);
      if (watchers.size === 0) this.byPath.delete(path);
      this.size--;
    }
  }

  paths(): IterableIterator<string> {
    return this.byPath.keys();
  }

  entries(): IterableIterator<[string, Set<Watcher>]> {
    return this.byPath.entries();
  }

  private forget(watcher: Watcher, path: string): void {
    const paths = this.byWatcher.get(watcher)!;
    paths.delete(path);
    if (paths.size === 0) this.byWatcher.delete(watcher);
    this.size--;
  }
}

function notifyAll(watchers: Iterable<Watcher>, type: EventTypeCode, path: string): void {
  for (const watcher of watchers) watcher.notify(type, path);
}
