// Structured logs (pino): one JSON object per line on stdout, written synchronously so
// that a line is out before the event it reports has consequences (and nothing is lost
// in a buffer when the process exits). Each member logs through a child logger that
// carries its id. The cluster secret is redacted should any object ever carry it.

import { pino, type Logger } from 'pino';
import type { NodeId } from '../stdx/types.js';
import type { LogLevel } from './config.js';

/** File descriptor 1: standard output. */
const STDOUT_FD = 1;

export function createMemberLogger(id: NodeId, level: LogLevel): Logger {
  const root = pino(
    {
      level,
      base: undefined,
      redact: { paths: ['clusterSecret', '*.clusterSecret', 'secret', '*.secret'], censor: '[redacted]' },
    },
    pino.destination({ dest: STDOUT_FD, sync: true }),
  );
  return root.child({ member: id });
}
