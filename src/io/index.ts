export type { Clock, Timer } from './clock.js';
export type { Disk, DiskFile } from './disk.js';
export type { Transport } from './transport.js';
