// The znode tree (docs/zookeeper.md §2.2, §2.3, §2.6): a map from full path to
// node, each node with the names of its children, and the writes that change it.
//
// Writes are transactions. A Txn validates each operation, in ZooKeeper's error precedence,
// against the state the earlier operations of the same multi left, and applies it at once,
// logging how to undo it; if a later operation fails, the log is replayed backwards and
// nothing of the multi remains (sequence counters included). Validation never mutates, so
// a failing operation has nothing of its own to undo.
//
// Pure data structure: no I/O, no clock. The zxid and time of a write come in with it.

import { assert, unreachable } from '../stdx/assert.js';
import { checkAcl, validateAcl } from './acl.js';
import { CreateMode, Err, Perm } from './constants.js';
import { baseName, parentOf, sequenceSuffix, validatePath } from './paths.js';
import type { Acl, Data, Id, Stat, WatchTrigger, WriteOp, WriteResult } from './types.js';

/** A znode's persisted fields: what a snapshot holds (StatPersisted plus data and ACL). */
export interface NodeRecord {
  /** Owned by the tree: never mutated in place (setData replaces it), so records share it. */
  readonly data: Data;
  /** Never mutated in place either (setACL replaces it). */
  readonly acl: readonly Acl[];
  readonly czxid: number;
  readonly mzxid: number;
  readonly ctime: number;
  readonly mtime: number;
  /** Signed 32-bit; wraps past 2^31-1 and skips -1 (nextVersion). */
  readonly version: number;
  readonly aversion: number;
  /** The owning session of an ephemeral node, else 0. */
  readonly ephemeralOwner: number;
  readonly pzxid: number;
  /**
   * Children ever created here, a signed 32-bit counter (ZooKeeper stores it as the
   * persisted cversion). It names sequential children and only grows on committed creates;
   * clients see cversion = 2 × creations − numChildren (DataNode.copyStat).
   */
  readonly creations: number;
}

/** A znode as readers see it. */
export interface ZNode extends NodeRecord {
  /** Child names (not paths). Invariant: exactly the names of the nodes whose parent this is. */
  readonly children: ReadonlySet<string>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface NodeState extends Mutable<NodeRecord> {
  readonly children: Set<string>;
}

/** Where and when a transaction writes, and who writes it. */
export interface TxnContext {
  /** Every node created or changed by the transaction gets this zxid. */
  readonly zxid: number;
  /** ctime and mtime of what the transaction creates or changes (the leader's clock). */
  readonly timeMs: number;
  /** The writing session: owner of the ephemeral nodes it creates. */
  readonly sessionId: number;
  /** The caller's ids, for ACL checks and 'auth' ACL entries. */
  readonly ids: readonly Id[];
}

export interface TxnOutcome {
  readonly committed: boolean;
  /**
   * One per operation. If the transaction failed: {op:'error', err:0} before the failing
   * operation, its code for it, RUNTIMEINCONSISTENCY after it (§1.7).
   */
  readonly results: WriteResult[];
  /** The watch triggers of a committed transaction, in operation order; none if it failed. */
  readonly triggers: WatchTrigger[];
}

type Undo = () => void;

const anyone: Id = { scheme: 'world', id: 'anyone' };
export const openAclUnsafe: readonly Acl[] = [{ perms: Perm.all, id: anyone }];
export const readAclUnsafe: readonly Acl[] = [{ perms: Perm.read, id: anyone }];

/** Nodes ZooKeeper creates itself and refuses to delete (DataTree.isSpecialPath). */
/** ZooKeeper's first check of a create or delete path: it has a '/' and no NUL. */
function hasParent(path: string): boolean {
  return path.includes('/') && !path.includes('\0');
}

const systemPaths: ReadonlySet<string> = new Set(['/', '/zookeeper', '/zookeeper/quota', '/zookeeper/config']);

/** The next version after `version`: signed 32-bit, skipping -1, which means "any" (ZOOKEEPER-4743). */
export function nextVersion(version: number): number {
  const next = version === 0x7fffffff ? -0x80000000 : version + 1;
  return next === -1 ? 0 : next;
}

/** `expected` -1 accepts any version. */
function versionMatches(expected: number, current: number): boolean {
  return expected === -1 || expected === current;
}

export function statOf(node: ZNode): Stat {
  const numChildren = node.children.size;
  return {
    czxid: node.czxid,
    mzxid: node.mzxid,
    ctime: node.ctime,
    mtime: node.mtime,
    version: node.version,
    // Java int arithmetic: wraps exactly as ZooKeeper's does once creations passes 2^30.
    cversion: (2 * node.creations - numChildren) | 0,
    aversion: node.aversion,
    ephemeralOwner: node.ephemeralOwner,
    dataLength: node.data?.length ?? 0,
    numChildren,
    pzxid: node.pzxid,
  };
}

/** A copy of the persisted fields (data and ACL are shared: they are never mutated). */
export function recordOf(node: NodeRecord): NodeRecord {
  return {
    data: node.data,
    acl: node.acl,
    czxid: node.czxid,
    mzxid: node.mzxid,
    ctime: node.ctime,
    mtime: node.mtime,
    version: node.version,
    aversion: node.aversion,
    ephemeralOwner: node.ephemeralOwner,
    pzxid: node.pzxid,
    creations: node.creations,
  };
}

/**
 * The tree a fresh ZooKeeper holds (§2.2): '/', '/zookeeper', '/zookeeper/quota' and
 * '/zookeeper/config', all from zxid 0 with empty (not null) data and no creations, so the
 * root reports cversion -1 with its one child and /zookeeper -2 with two, as Java's DataTree
 * does (it links them with addChild, which counts nothing). /zookeeper/config is read-only
 * to everyone, and Java sets that ACL with setACL(…, -1), which leaves its aversion at -1.
 */
export function initialRecords(): [string, NodeRecord][] {
  const node = (acl: readonly Acl[], aversion: number): NodeRecord => ({
    data: new Uint8Array(0),
    acl,
    czxid: 0,
    mzxid: 0,
    ctime: 0,
    mtime: 0,
    version: 0,
    aversion,
    ephemeralOwner: 0,
    pzxid: 0,
    creations: 0,
  });
  return [
    ['/', node(openAclUnsafe, 0)],
    ['/zookeeper', node(openAclUnsafe, 0)],
    ['/zookeeper/quota', node(openAclUnsafe, 0)],
    ['/zookeeper/config', node(readAclUnsafe, -1)],
  ];
}

/**
 * The tree as it was when a snapshot began, read while writes go on (copy-on-write, as
 * kv/store.ts StoreCapture): every path that existed then, and the first record each had
 * before a later write changed or deleted it. Reading path p gives `preimages.get(p) ?? live
 * p`, which is p at the snapshot's zxid however the tree changed since.
 */
export class TreeCapture {
  /** Invariant: a path is saved at most once, before its first change after `zxid`. */
  private readonly preimages = new Map<string, NodeRecord>();
  private ended = false;

  constructor(
    private readonly nodes: ReadonlyMap<string, NodeRecord>,
    /** Every path at the snapshot, in the tree's map order. Never mutated. */
    readonly paths: readonly string[],
    /** The last zxid applied when the capture began: nodes with a later czxid are not in it. */
    readonly zxid: number,
  ) {}

  get active(): boolean {
    return !this.ended;
  }

  /** Nodes whose pre-snapshot record was saved so far (for tests and metrics). */
  get preimageCount(): number {
    return this.preimages.size;
  }

  /** The record of `paths[i]` at the snapshot. */
  recordAt(i: number): NodeRecord {
    assert(!this.ended, 'a capture is read only while it is active');
    const path = this.paths[i]!;
    const record = this.preimages.get(path) ?? this.nodes.get(path);
    assert(record !== undefined, 'every captured path existed at the snapshot');
    return record;
  }

  /** Called by the tree before it changes or deletes the node at `path`. */
  preserve(path: string, node: NodeRecord): void {
    // A node created after the capture began is not in it: nothing to save.
    if (node.czxid > this.zxid || this.preimages.has(path)) return;
    this.preimages.set(path, recordOf(node));
  }

  end(): void {
    this.ended = true;
    this.preimages.clear();
  }
}

/**
 * The tree's mutable state and the only code that changes it. Every change first lets a
 * capture in progress save the node's old record, and, given an undo log, logs its inverse.
 */
class TreeState {
  readonly nodes = new Map<string, NodeState>();
  /** Invariant: for each session, exactly the paths of the nodes it owns. No empty sets. */
  readonly ephemeralPaths = new Map<number, Set<string>>();
  /** Invariant: Σ over nodes of path length + data length (ZooKeeper's approximateDataSize). */
  dataBytes = 0;
  /** The snapshot in progress, if any. Invariant: undefined or active. */
  capture: TreeCapture | undefined = undefined;

  insert(path: string, node: NodeState, parentPath: string, parent: NodeState, undo: Undo[] | undefined): void {
    assert(!this.nodes.has(path), 'a create makes a new node');
    this.capture?.preserve(parentPath, parent);
    const name = baseName(path);
    const { pzxid, creations } = parent;
    parent.pzxid = node.czxid;
    parent.creations = (parent.creations + 1) | 0;
    parent.children.add(name);
    this.nodes.set(path, node);
    this.dataBytes += nodeBytes(path, node.data);
    if (node.ephemeralOwner !== 0) this.addEphemeral(node.ephemeralOwner, path);
    undo?.push(() => {
      if (node.ephemeralOwner !== 0) this.removeEphemeral(node.ephemeralOwner, path);
      this.dataBytes -= nodeBytes(path, node.data);
      this.nodes.delete(path);
      parent.children.delete(name);
      parent.pzxid = pzxid;
      parent.creations = creations;
    });
  }

  remove(path: string, node: NodeState, parentPath: string, parent: NodeState, zxid: number, undo: Undo[] | undefined): void {
    assert(node.children.size === 0, 'only a leaf is deleted');
    this.capture?.preserve(path, node);
    this.capture?.preserve(parentPath, parent);
    const name = baseName(path);
    const { pzxid } = parent;
    parent.pzxid = zxid;
    parent.children.delete(name);
    this.nodes.delete(path);
    this.dataBytes -= nodeBytes(path, node.data);
    if (node.ephemeralOwner !== 0) this.removeEphemeral(node.ephemeralOwner, path);
    undo?.push(() => {
      if (node.ephemeralOwner !== 0) this.addEphemeral(node.ephemeralOwner, path);
      this.dataBytes += nodeBytes(path, node.data);
      this.nodes.set(path, node);
      parent.children.add(name);
      parent.pzxid = pzxid;
    });
  }

  writeData(path: string, node: NodeState, data: Data, version: number, zxid: number, timeMs: number, undo: Undo[] | undefined): void {
    this.capture?.preserve(path, node);
    const old = { data: node.data, version: node.version, mzxid: node.mzxid, mtime: node.mtime };
    this.dataBytes += (data?.length ?? 0) - (node.data?.length ?? 0);
    node.data = data;
    node.version = version;
    node.mzxid = zxid;
    node.mtime = timeMs;
    undo?.push(() => {
      this.dataBytes += (old.data?.length ?? 0) - (node.data?.length ?? 0);
      Object.assign(node, old);
    });
  }

  writeAcl(path: string, node: NodeState, acl: readonly Acl[], aversion: number, undo: Undo[] | undefined): void {
    this.capture?.preserve(path, node);
    const old = { acl: node.acl, aversion: node.aversion };
    node.acl = acl;
    node.aversion = aversion;
    undo?.push(() => Object.assign(node, old));
  }

  private addEphemeral(session: number, path: string): void {
    let paths = this.ephemeralPaths.get(session);
    if (paths === undefined) {
      paths = new Set();
      this.ephemeralPaths.set(session, paths);
    }
    paths.add(path);
  }

  private removeEphemeral(session: number, path: string): void {
    const paths = this.ephemeralPaths.get(session);
    assert(paths !== undefined, 'an ephemeral node is indexed under its owner');
    assert(paths.has(path), 'an ephemeral node is indexed under its owner');
    paths.delete(path);
    if (paths.size === 0) this.ephemeralPaths.delete(session);
  }
}

function nodeBytes(path: string, data: Data): number {
  return path.length + (data?.length ?? 0);
}

/**
 * One transaction: operations validated and applied one at a time, then committed (the
 * triggers are released) or rolled back (the undo log is replayed backwards).
 */
class Txn {
  private readonly undo: Undo[] = [];
  private readonly triggers: WatchTrigger[] = [];
  private done = false;

  constructor(
    private readonly state: TreeState,
    private readonly context: TxnContext,
  ) {}

  /** Applies `op` and returns its result, or returns an error code having changed nothing. */
  apply(op: WriteOp): WriteResult | number {
    assert(!this.done, 'a transaction ends once');
    switch (op.op) {
      case 'create':
        return this.create(op);
      case 'delete':
        return this.delete(op);
      case 'setData':
        return this.setData(op);
      case 'setACL':
        return this.setAcl(op);
      case 'check':
        return this.check(op);
      default:
        return unreachable(op, 'write op');
    }
  }

  commit(): WatchTrigger[] {
    assert(!this.done, 'a transaction ends once');
    this.done = true;
    return this.triggers;
  }

  rollback(): void {
    assert(!this.done, 'a transaction ends once');
    this.done = true;
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
  }

  /** Checks in PrepRequestProcessor's order (§2.3); the first failing check names the error. */
  private create(op: Extract<WriteOp, { op: 'create' }>): WriteResult | number {
    const { ids, zxid, timeMs, sessionId } = this.context;
    if (!Number.isInteger(op.flags) || op.flags < 0 || op.flags > CreateMode.persistentSequentialWithTtl) return Err.badArguments;
    // Containers and TTL nodes need a reaper this release does not have.
    if (op.flags >= CreateMode.container) return Err.unimplemented;
    const sequential = (op.flags & 2) !== 0;
    const ephemeral = (op.flags & 1) !== 0;
    // Only the shape needed to find the parent is checked first (validatePathForCreate);
    // the whole path is validated after the parent and permission checks, so "/a//b" with
    // no "/a/" is NONODE, as ZooKeeper answers (found by the differential tests).
    if (!hasParent(op.path)) return Err.badArguments;
    const acl = validateAcl(op.acl, ids);
    if (acl === undefined) return Err.invalidAcl;
    const parentPath = parentOf(op.path);
    const parent = this.state.nodes.get(parentPath);
    if (parent === undefined) return Err.noNode;
    if (!checkAcl(parent.acl, Perm.create, ids)) return Err.noAuth;
    // The suffix is the parent's creation count before this create (§2.2).
    const path = sequential ? op.path + sequenceSuffix(parent.creations) : op.path;
    if (validatePath(path, false) !== undefined) return Err.badArguments;
    if (this.state.nodes.has(path)) return Err.nodeExists;
    if (parent.ephemeralOwner !== 0) return Err.noChildrenForEphemerals;
    assert(!ephemeral || sessionId !== 0, 'an ephemeral node has an owning session');
    assert(parentOf(path) === parentPath, 'the sequence suffix adds no segment');
    const node: NodeState = {
      data: op.data,
      acl,
      czxid: zxid,
      mzxid: zxid,
      ctime: timeMs,
      mtime: timeMs,
      version: 0,
      aversion: 0,
      ephemeralOwner: ephemeral ? sessionId : 0,
      pzxid: zxid,
      creations: 0,
      children: new Set(),
    };
    this.state.insert(path, node, parentPath, parent, this.undo);
    this.triggers.push({ path, type: 'created' }, { path: parentPath, type: 'childrenChanged' });
    return { op: 'create', path, stat: statOf(node), withStat: op.withStat };
  }

  private delete(op: Extract<WriteOp, { op: 'delete' }>): WriteResult | number {
    const { ids, zxid } = this.context;
    // getParentPathAndValidate: the shape needed to find the parent and the system paths;
    // a malformed path whose parent exists is then simply absent (NONODE), as in ZooKeeper.
    if (!hasParent(op.path) || systemPaths.has(op.path)) return Err.badArguments;
    const parentPath = parentOf(op.path);
    const parent = this.state.nodes.get(parentPath);
    if (parent === undefined) return Err.noNode;
    if (!checkAcl(parent.acl, Perm.delete, ids)) return Err.noAuth;
    const node = this.state.nodes.get(op.path);
    if (node === undefined) return Err.noNode;
    if (!versionMatches(op.version, node.version)) return Err.badVersion;
    if (node.children.size > 0) return Err.notEmpty;
    this.state.remove(op.path, node, parentPath, parent, zxid, this.undo);
    this.triggers.push({ path: op.path, type: 'deleted' }, { path: parentPath, type: 'childrenChanged' });
    return { op: 'delete' };
  }

  private setData(op: Extract<WriteOp, { op: 'setData' }>): WriteResult | number {
    const { ids, zxid, timeMs } = this.context;
    if (validatePath(op.path, false) !== undefined) return Err.badArguments;
    const node = this.state.nodes.get(op.path);
    if (node === undefined) return Err.noNode;
    if (!checkAcl(node.acl, Perm.write, ids)) return Err.noAuth;
    if (!versionMatches(op.version, node.version)) return Err.badVersion;
    this.state.writeData(op.path, node, op.data, nextVersion(node.version), zxid, timeMs, this.undo);
    this.triggers.push({ path: op.path, type: 'dataChanged' });
    return { op: 'setData', stat: statOf(node) };
  }

  private setAcl(op: Extract<WriteOp, { op: 'setACL' }>): WriteResult | number {
    const { ids } = this.context;
    if (validatePath(op.path, false) !== undefined) return Err.badArguments;
    const acl = validateAcl(op.acl, ids);
    if (acl === undefined) return Err.invalidAcl;
    const node = this.state.nodes.get(op.path);
    if (node === undefined) return Err.noNode;
    if (!checkAcl(node.acl, Perm.admin, ids)) return Err.noAuth;
    if (!versionMatches(op.version, node.aversion)) return Err.badVersion;
    // setACL fires no watch (§2.4).
    this.state.writeAcl(op.path, node, acl, nextVersion(node.aversion), this.undo);
    return { op: 'setACL', stat: statOf(node) };
  }

  private check(op: Extract<WriteOp, { op: 'check' }>): WriteResult | number {
    if (validatePath(op.path, false) !== undefined) return Err.badArguments;
    const node = this.state.nodes.get(op.path);
    if (node === undefined) return Err.noNode;
    if (!checkAcl(node.acl, Perm.read, this.context.ids)) return Err.noAuth;
    if (!versionMatches(op.version, node.version)) return Err.badVersion;
    return { op: 'check' };
  }
}

export class DataTree {
  private readonly state = new TreeState();

  constructor() {
    this.load(initialRecords());
  }

  /** The node at `path`; '' is the root, as in ZooKeeper (reads do not validate paths, §2.2). */
  node(path: string): ZNode | undefined {
    return this.state.nodes.get(path === '' ? '/' : path);
  }

  stat(path: string): Stat | undefined {
    const node = this.node(path);
    return node === undefined ? undefined : statOf(node);
  }

  /** The child names of `path`, sorted (any order is compatible, §2.2); [] if there is no such node. */
  children(path: string): string[] {
    const node = this.node(path);
    return node === undefined ? [] : [...node.children].sort();
  }

  /** Nodes in the tree (ZooKeeper's own count adds one for its '' alias of the root). */
  get nodeCount(): number {
    return this.state.nodes.size;
  }

  /** Σ path length + data length over all nodes, as ZooKeeper's approximateDataSize. */
  get approximateDataSize(): number {
    return this.state.dataBytes;
  }

  /** The paths of the ephemeral nodes `sessionId` owns, sorted. */
  ephemerals(sessionId: number): string[] {
    return [...(this.state.ephemeralPaths.get(sessionId) ?? [])].sort();
  }

  /** Sessions that own at least one ephemeral node. */
  ephemeralOwners(): number[] {
    return [...this.state.ephemeralPaths.keys()];
  }

  /**
   * Applies `ops` as one all-or-nothing transaction at `context.zxid` (§2.6). A non-multi
   * write is a transaction of one. The tree takes ownership of the ops' data arrays.
   */
  transact(ops: readonly WriteOp[], context: TxnContext): TxnOutcome {
    const txn = new Txn(this.state, context);
    const results: WriteResult[] = [];
    for (let i = 0; i < ops.length; i++) {
      const result = txn.apply(ops[i]!);
      if (typeof result === 'number') {
        txn.rollback();
        return { committed: false, results: ops.map((_, j) => failedResult(j, i, result)), triggers: [] };
      }
      results.push(result);
    }
    return { committed: true, results, triggers: txn.commit() };
  }

  /**
   * Deletes every ephemeral node of `sessionId` at one zxid (closeSession, §2.1) and returns
   * the triggers. Ephemeral nodes have no children, so each delete is independent; sorted
   * order makes the triggers deterministic.
   */
  closeSession(sessionId: number, zxid: number): WatchTrigger[] {
    const triggers: WatchTrigger[] = [];
    for (const path of this.ephemerals(sessionId)) {
      const node = this.state.nodes.get(path);
      const parentPath = parentOf(path);
      const parent = this.state.nodes.get(parentPath);
      assert(node !== undefined && parent !== undefined, 'an indexed ephemeral node exists, and so does its parent');
      this.state.remove(path, node, parentPath, parent, zxid, undefined);
      triggers.push({ path, type: 'deleted' }, { path: parentPath, type: 'childrenChanged' });
    }
    return triggers;
  }

  /** Every node, in map order (a function of the log, so equal on every member). */
  *records(): IterableIterator<[string, NodeRecord]> {
    yield* this.state.nodes.entries();
  }

  /**
   * Starts a copy-on-write capture of the tree as of `zxid`, the last zxid applied (one at a
   * time). Cost now: one copy of the path list, O(nodes). Each later change to a captured
   * node costs one record copy until endCapture().
   */
  beginCapture(zxid: number): TreeCapture {
    assert(this.state.capture === undefined, 'one snapshot in progress at a time');
    this.state.capture = new TreeCapture(this.state.nodes, [...this.state.nodes.keys()], zxid);
    return this.state.capture;
  }

  /** Ends `capture` (default: the one in progress); one that load() already ended leaves a newer one be. */
  endCapture(capture: TreeCapture | undefined = this.state.capture): void {
    capture?.end();
    if (capture === this.state.capture) this.state.capture = undefined;
  }

  /**
   * Replaces the whole tree with `records` (a snapshot's), rebuilding the child sets and the
   * ephemeral index. A capture in progress ends (its state is gone). Throws (an assertion)
   * if the records do not form a tree rooted at '/'.
   */
  load(records: Iterable<readonly [string, NodeRecord]>): void {
    this.endCapture();
    const state = this.state;
    state.nodes.clear();
    state.ephemeralPaths.clear();
    state.dataBytes = 0;
    for (const [path, record] of records) {
      assert(validatePath(path, false) === undefined, `a snapshot path is valid: ${JSON.stringify(path)}`);
      assert(!state.nodes.has(path), `a snapshot holds ${path} once`);
      state.nodes.set(path, { ...recordOf(record), children: new Set() });
      state.dataBytes += nodeBytes(path, record.data);
    }
    assert(state.nodes.has('/'), 'a tree has a root');
    for (const [path, node] of state.nodes) {
      if (path !== '/') {
        const parent = state.nodes.get(parentOf(path));
        assert(parent !== undefined, `the parent of ${path} exists`);
        assert(parent.ephemeralOwner === 0, `the parent of ${path} is not ephemeral`);
        parent.children.add(baseName(path));
      }
      if (node.ephemeralOwner !== 0) {
        let paths = state.ephemeralPaths.get(node.ephemeralOwner);
        if (paths === undefined) {
          paths = new Set();
          state.ephemeralPaths.set(node.ephemeralOwner, paths);
        }
        paths.add(path);
      }
    }
  }
}

function failedResult(j: number, failed: number, err: number): WriteResult {
  return { op: 'error', err: j < failed ? Err.ok : j === failed ? err : Err.runtimeInconsistency };
}
