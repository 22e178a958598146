export type { Clock, Timer } from './clock.js';
export type { Disk, DiskFile, DiskErrorCode } from './disk.js';
export { DiskError } from './disk.js';
export type { Transport } from './transport.js';
