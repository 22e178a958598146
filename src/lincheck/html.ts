// A self-contained HTML page that draws a checked history, in the spirit of Porcupine's
// visualization: per partition, one timeline per client, each operation a box from its call
// to its return. Boxes in the (longest) linearization are green and numbered in linearization
// order; operations that could not be placed are red; a red line marks where the search got
// stuck. Hovering a box shows the operation and the model state after it. No scripts, no
// external resources: the file can be attached to a bug report and opened anywhere.

import { describeResult } from './explain.js';
import type { CheckResult, Model, Operation, PartitionResult } from './types.js';

/** Partitions drawn besides the failing one; a history may have thousands of keys. */
const partitionsDrawnMax = 24;
/** Pixels per distinct event time: time is drawn compressed to event order, so that a
 * short operation between long ones stays visible. */
const eventWidthPx = 20;
const laneHeightPx = 26;
const labelWidthPx = 90;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Maps each distinct event time to its rank; never-returned operations end after all. */
function timeRanks<I, O>(operations: readonly Operation<I, O>[]): { rankOf: Map<number, number>; ranks: number } {
  const times = new Set<number>();
  for (const operation of operations) {
    times.add(operation.callTime);
    if (operation.returnTime !== undefined) times.add(operation.returnTime);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const rankOf = new Map<number, number>();
  sorted.forEach((time, rank) => {
    rankOf.set(time, rank);
  });
  return { rankOf, ranks: sorted.length + 1 };
}

interface Placed {
  readonly index: number;
  readonly client: number;
  readonly lane: number;
  readonly from: number;
  readonly to: number;
}

/** Rows per client, with extra lanes only where a client's own operations overlap. */
function placeOperations<I, O>(operations: readonly Operation<I, O>[], rankOf: Map<number, number>, ranks: number): { placed: Placed[]; rows: { client: number; lanes: number }[] } {
  const byClient = new Map<number, number[]>();
  operations.forEach((operation, index) => {
    const list = byClient.get(operation.clientId) ?? [];
    list.push(index);
    byClient.set(operation.clientId, list);
  });
  const placed: Placed[] = [];
  const rows: { client: number; lanes: number }[] = [];
  for (const client of [...byClient.keys()].sort((a, b) => a - b)) {
    const laneEnds: number[] = [];
    for (const index of byClient.get(client)!) {
      const operation = operations[index]!;
      const from = rankOf.get(operation.callTime)!;
      const to = operation.returnTime === undefined ? ranks : rankOf.get(operation.returnTime)!;
      let lane = laneEnds.findIndex((end) => end < from);
      if (lane < 0) lane = laneEnds.push(to) - 1;
      else laneEnds[lane] = to;
      placed.push({ index, client, lane, from, to });
    }
    rows.push({ client, lanes: laneEnds.length });
  }
  return { placed, rows };
}

function drawPartition<S, I, O>(model: Model<S, I, O>, partition: PartitionResult<S, I, O>): string {
  const { operations } = partition;
  const { rankOf, ranks } = timeRanks(operations);
  const { placed, rows } = placeOperations(operations, rankOf, ranks);
  const order = new Map<number, number>();
  partition.linearization.forEach((index, position) => {
    order.set(index, position);
  });
  const unplaceable = new Set(partition.unplaceable);
  const rowTop = new Map<number, number>();
  let top = 0;
  for (const row of rows) {
    rowTop.set(row.client, top);
    top += row.lanes * laneHeightPx + 6;
  }
  const width = labelWidthPx + (ranks + 1) * eventWidthPx;
  const parts: string[] = [];
  for (const row of rows) {
    parts.push(`<div class="client" style="top:${rowTop.get(row.client)!}px;height:${row.lanes * laneHeightPx}px">client ${row.client}</div>`);
  }
  for (const box of placed) {
    const operation = operations[box.index]!;
    const position = order.get(box.index);
    const kind = position !== undefined ? 'linearized' : unplaceable.has(box.index) ? 'unplaceable' : 'other';
    const blocking = partition.blocking === box.index ? ' blocking' : '';
    const pending = operation.output === undefined ? ' pending' : '';
    const described = model.describeOperation(operation.input, operation.output);
    let title = `#${box.index} client ${operation.clientId}: ${described}\ncall ${operation.callTime}, return ${operation.returnTime ?? 'never'}`;
    if (position !== undefined) title += `\nlinearized ${position + 1}; state after: ${model.describeState(partition.states[position]!)}`;
    if (kind === 'unplaceable') title += '\ncould not be placed after the longest prefix';
    const left = labelWidthPx + box.from * eventWidthPx;
    const boxWidth = Math.max(eventWidthPx - 2, (box.to - box.from) * eventWidthPx - 2);
    const label = position !== undefined ? `${position + 1}: ${described}` : described;
    parts.push(
      `<div class="op ${kind}${blocking}${pending}" style="left:${left}px;top:${rowTop.get(box.client)! + box.lane * laneHeightPx}px;width:${boxWidth}px" title="${escapeHtml(title)}">${escapeHtml(label)}</div>`,
    );
  }
  if (partition.blocking !== undefined) {
    const returnTime = operations[partition.blocking]!.returnTime;
    const rank = returnTime === undefined ? ranks : rankOf.get(returnTime)!;
    parts.push(`<div class="stuck" style="left:${labelWidthPx + rank * eventWidthPx}px;height:${top}px" title="the search could not get past this return"></div>`);
  }
  const heading = `${partition.key === '' ? 'history' : `key ${escapeHtml(JSON.stringify(partition.key))}`}: ${partition.outcome}, ${operations.length} operations`;
  return `<section><h2>${heading}</h2><div class="timeline" style="width:${width}px;height:${top + 4}px">${parts.join('')}</div></section>`;
}

const style = `
body { font: 13px system-ui, sans-serif; margin: 16px; color: #222; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
.timeline { position: relative; }
.client { position: absolute; left: 0; width: 84px; font-weight: 600; line-height: 26px; border-top: 1px solid #eee; }
.op { position: absolute; height: 20px; line-height: 20px; font-size: 11px; overflow: hidden; white-space: nowrap;
      text-overflow: ellipsis; border-radius: 3px; padding: 0 2px; box-sizing: border-box; border: 1px solid #888; }
.op:hover { overflow: visible; z-index: 2; outline: 2px solid #000; }
.linearized { background: #c8f0c8; border-color: #3a3; }
.unplaceable { background: #f8c8c8; border-color: #c33; }
.other { background: #e4e4e4; }
.blocking { border: 2px solid #c00; font-weight: 700; }
.pending { border-right-style: dashed; }
.stuck { position: absolute; top: 0; width: 0; border-left: 2px solid #e00; z-index: 1; }
.legend span { display: inline-block; padding: 1px 6px; margin-right: 8px; border-radius: 3px; border: 1px solid #888; }
`;

/** The whole page. The failing partition (if any) is drawn first. */
export function renderHtml<S, I, O>(model: Model<S, I, O>, result: CheckResult<S, I, O>, title = 'linearizability check'): string {
  const order = result.partitions.map((_, index) => index);
  if (result.failingPartition !== undefined) {
    order.splice(result.failingPartition, 1);
    order.unshift(result.failingPartition);
  }
  const drawn = order.slice(0, partitionsDrawnMax + 1);
  const sections = drawn.map((index) => `<div class="scroll">${drawPartition(model, result.partitions[index]!)}</div>`);
  const omitted = order.length - drawn.length;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${style}</style></head>
<body>
<h1>${escapeHtml(title)}: ${result.verdict}</h1>
<p class="legend"><span class="linearized">linearized (number = order)</span><span class="unplaceable">could not be placed</span><span class="blocking">its return blocks the search</span><span class="other">not reached</span> Dashed right edge: result unknown, so it may take effect up to the end. Hover a box for details.</p>
<pre>${escapeHtml(describeResult(model, result))}</pre>
${sections.join('\n')}
${omitted > 0 ? `<p>${omitted} more partitions not drawn.</p>` : ''}
</body></html>
`;
}
