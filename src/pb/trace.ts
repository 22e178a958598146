// The Output Rule, checked from a primary's trace: every reply's seq must have been
// acknowledged by the backup before the reply was released, unless the primary was running
// alone (no backup attached) at the time.

import type { TraceEvent } from './types.js';

export interface OutputRuleViolation {
  readonly requestId: number;
  readonly seq: number;
  /** The highest seq acknowledged when the reply left. */
  readonly ackedSeq: number;
}

export function checkOutputRule(trace: readonly TraceEvent[]): OutputRuleViolation[] {
  const violations: OutputRuleViolation[] = [];
  let ackedSeq = 0;
  let alone = true;
  for (const event of trace) {
    switch (event.type) {
      case 'shipped':
        break;
      case 'acked':
        ackedSeq = Math.max(ackedSeq, event.seq);
        break;
      case 'alone':
        alone = true;
        break;
      case 'protected':
        alone = false;
        ackedSeq = Math.max(ackedSeq, event.seq);
        break;
      case 'reply':
        if (!alone && event.seq > ackedSeq) violations.push({ requestId: event.requestId, seq: event.seq, ackedSeq });
        break;
      default: {
        const never: never = event;
        throw new Error(`unknown trace event ${JSON.stringify(never)}`);
      }
    }
  }
  return violations;
}

export function describeViolations(violations: readonly OutputRuleViolation[]): string {
  return violations
    .slice(0, 5)
    .map((v) => `reply to request ${v.requestId} (log entry ${v.seq}) left when the backup had acked only ${v.ackedSeq}`)
    .join('; ');
}
