// ZooKeeper's protocol constants (docs/zookeeper.md §1.5, §1.8, §1.9), as
// the Java server and every client define them. Numbers on the wire; names for people.

export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  reconfig: 16,
  checkWatches: 17,
  removeWatches: 18,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  sasl: 102,
  getEphemerals: 103,
  getAllChildrenNumber: 104,
  setWatches2: 105,
  addWatch: 106,
  whoAmI: 107,
  createSession: -10,
  closeSession: -11,
  error: -1,
} as const;

/** KeeperException.Code: 0 or negative. */
export const Err = {
  ok: 0,
  systemError: -1,
  runtimeInconsistency: -2,
  dataInconsistency: -3,
  connectionLoss: -4,
  marshallingError: -5,
  unimplemented: -6,
  operationTimeout: -7,
  badArguments: -8,
  unknownSession: -12,
  apiError: -100,
  noNode: -101,
  noAuth: -102,
  badVersion: -103,
  noChildrenForEphemerals: -108,
  nodeExists: -110,
  notEmpty: -111,
  sessionExpired: -112,
  invalidCallback: -113,
  invalidAcl: -114,
  authFailed: -115,
  sessionMoved: -118,
  notReadOnly: -119,
  noWatcher: -121,
} as const;

export type ErrCode = (typeof Err)[keyof typeof Err];

export const errName: ReadonlyMap<number, string> = new Map(Object.entries(Err).map(([name, code]) => [code, name]));

/** CreateMode flags. */
export const CreateMode = {
  persistent: 0,
  ephemeral: 1,
  persistentSequential: 2,
  ephemeralSequential: 3,
  container: 4,
  persistentWithTtl: 5,
  persistentSequentialWithTtl: 6,
} as const;

export const Perm = { read: 1, write: 2, create: 4, delete: 8, admin: 16, all: 31 } as const;

/** WatcherEvent.type. */
export const EventType = {
  none: -1,
  nodeCreated: 1,
  nodeDeleted: 2,
  nodeDataChanged: 3,
  nodeChildrenChanged: 4,
} as const;

export type EventTypeCode = (typeof EventType)[keyof typeof EventType];

/** WatcherEvent.state: the server only ever sends SyncConnected. */
export const KeeperState = { syncConnected: 3, expired: -112 } as const;

/** Special xids (§1.4). */
export const Xid = { notification: -1, ping: -2, auth: -4, setWatches: -8 } as const;

/** The ZooKeeper version this server claims (envi, srvr, mntr): the 3.8 protocol. */
export const claimedVersion = '3.8.4-flotilla';
