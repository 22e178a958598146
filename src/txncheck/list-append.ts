// A checker for transactional histories of the list-append workload, after Elle (Kingsbury
// and Alvaro, "Elle: Inferring Isolation Anomalies from Experimental Observations", VLDB
// 2020, arXiv:2003.10554), written here from the paper's ideas (Elle's code is not ported).
//
// Each transaction appends unique values to some keys and reads whole lists of others. Since
// every value is appended once, a read of [1, 2, 3] proves the key went through [], [1],
// [1, 2], [1, 2, 3] in that order: the longest read of a key gives its version order, and
// every read names the transaction that wrote what it saw. From that:
//
//   * anomalies found without a graph: incompatible orders (two reads of a key that are not
//     prefixes of one another), duplicate elements, G1a (a committed read sees an aborted
//     append), G1b (a committed read ends in a writer's intermediate append), internal
//     inconsistency (a transaction's read disagrees with its own earlier read and appends),
//     lost update (two committed transactions read the same version of a key, then both
//     append to it);
//   * a dependency graph over the committed (ok) and indeterminate (info) transactions:
//     ww (T appended the element after W's), wr (R read a list ending in W's element), rw (R
//     read the version just before T's append: R did not see it), and rt (A completed before
//     B was invoked: strict serializability's real-time order, as a transitive reduction);
//   * cycles in it, found per strongly connected component and named by their edges: G0
//     (ww only), G1c (ww and wr), G-single (exactly one rw), G2-item (two or more rw); with a
//     "-realtime" suffix when only the real-time edges close the cycle.
//
// A history that shows none of these is strictly serializable as far as list-append can
// tell. The checker is pure: no clock, no I/O.

export type MicroOp = { readonly f: 'append'; readonly key: string; readonly value: number } | { readonly f: 'r'; readonly key: string; readonly value: readonly number[] | undefined };

export interface Txn {
  /** Unique per transaction (its position in the history is fine). */
  readonly id: number;
  readonly process: number;
  /** When the client invoked it and learnt its outcome, on one clock for the whole history. */
  readonly invokeMs: number;
  readonly completeMs: number;
  /** ok: committed, fail: certainly had no effect, info: unknown (it may have committed). */
  readonly status: 'ok' | 'fail' | 'info';
  /** The micro-operations as the transaction ran them; reads of an ok transaction carry what they returned. */
  readonly mops: readonly MicroOp[];
}

export type EdgeType = 'ww' | 'wr' | 'rw' | 'rt';

export interface Anomaly {
  readonly type: string;
  /** The transactions involved, and a sentence per step of the argument. */
  readonly txns: readonly number[];
  readonly explanation: string;
}

export interface CheckResult {
  readonly valid: boolean;
  readonly anomalies: readonly Anomaly[];
  /** Transactions, keys and edges examined (for the report). */
  readonly stats: { readonly txns: number; readonly keys: number; readonly edges: number };
}

interface Edge {
  readonly to: number;
  readonly types: Set<EdgeType>;
}

/** Anomalies reported per type at most (the first ones are what a person reads). */
const perTypeMax = 8;

export function checkListAppend(history: readonly Txn[]): CheckResult {
  const anomalies: Anomaly[] = [];
  const report = (anomaly: Anomaly) => {
    if (anomalies.filter((a) => a.type === anomaly.type).length < perTypeMax) anomalies.push(anomaly);
  };
  const byId = new Map(history.map((t) => [t.id, t]));

  // Who appended each (key, value), and where in the transaction's appends to that key.
  const writer = new Map<string, { txn: Txn; last: boolean }>();
  for (const txn of history) {
    const lastAppend = new Map<string, number>();
    for (const mop of txn.mops) if (mop.f === 'append') lastAppend.set(mop.key, mop.value);
    for (const mop of txn.mops) {
      if (mop.f !== 'append') continue;
      const id = `${mop.key}\u0000${mop.value}`;
      if (writer.has(id))
        report({ type: 'duplicate-append', txns: [writer.get(id)!.txn.id, txn.id], explanation: `the value ${mop.value} is appended to ${mop.key} twice: the checker needs unique appends` });
      writer.set(id, { txn, last: lastAppend.get(mop.key) === mop.value });
    }
  }
  const writerOf = (key: string, value: number) => writer.get(`${key}\u0000${value}`);

  // ---- Version orders from the reads ----
  const readsOf = new Map<string, Array<{ txn: Txn; value: readonly number[] }>>();
  for (const txn of history) {
    if (txn.status === 'fail') continue;
    for (const mop of txn.mops) {
      if (mop.f !== 'r' || mop.value === undefined) continue;
      const list = readsOf.get(mop.key) ?? [];
      list.push({ txn, value: mop.value });
      readsOf.set(mop.key, list);
    }
  }
  const order = new Map<string, readonly number[]>();
  for (const [key, reads] of readsOf) {
    const sorted = [...reads].sort((a, b) => a.value.length - b.value.length);
    let longest: readonly number[] = [];
    for (const read of sorted) {
      if (new Set(read.value).size !== read.value.length)
        report({ type: 'duplicate-elements', txns: [read.txn.id], explanation: `T${read.txn.id} read ${key} = ${show(read.value)}, which holds an element twice` });
      if (!isPrefix(longest, read.value)) {
        report({ type: 'incompatible-order', txns: [read.txn.id], explanation: `${key} was read as ${show(longest)} and as ${show(read.value)}: neither is a prefix of the other` });
        continue;
      }
      longest = read.value;
    }
    order.set(key, longest);
  }

  // ---- Anomalies without a graph ----
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    const seen = new Map<string, number[]>(); // this txn's view of each key: its reads plus its own appends
    for (const mop of txn.mops) {
      if (mop.f === 'append') {
        const view = seen.get(mop.key);
        if (view !== undefined) view.push(mop.value);
        continue;
      }
      if (mop.value === undefined) continue;
      const expected = seen.get(mop.key);
      if (expected !== undefined && !sameList(expected, mop.value)) {
        report({ type: 'internal', txns: [txn.id], explanation: `T${txn.id} read ${mop.key} = ${show(mop.value)} after its own reads and appends implied ${show(expected)}` });
      }
      seen.set(mop.key, [...mop.value]);
      for (const element of mop.value) {
        const w = writerOf(mop.key, element);
        if (w === undefined) report({ type: 'garbage-read', txns: [txn.id], explanation: `T${txn.id} read ${element} in ${mop.key}, which nobody appended` });
        else if (w.txn.status === 'fail') report({ type: 'G1a', txns: [w.txn.id, txn.id], explanation: `T${txn.id} read ${element} in ${mop.key}, appended by T${w.txn.id}, which aborted` });
      }
      const lastElement = mop.value.at(-1);
      if (lastElement !== undefined) {
        const w = writerOf(mop.key, lastElement);
        if (w !== undefined && w.txn.id !== txn.id && !w.last)
          report({
            type: 'G1b',
            txns: [w.txn.id, txn.id],
            explanation: `T${txn.id} read ${mop.key} ending in ${lastElement}, an intermediate append of T${w.txn.id} (it appended more to ${mop.key} later)`,
          });
      }
    }
  }
  // Lost update: committed transactions that read the same version of a key and then appended to it.
  const readThenAppend = new Map<string, number[]>();
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    const first = new Map<string, readonly number[]>();
    for (const mop of txn.mops) {
      if (mop.f === 'r' && mop.value !== undefined && !first.has(mop.key)) first.set(mop.key, mop.value);
      if (mop.f === 'append' && first.has(mop.key)) {
        const id = `${mop.key}\u0000${show(first.get(mop.key)!)}`;
        const list = readThenAppend.get(id) ?? [];
        if (!list.includes(txn.id)) list.push(txn.id);
        readThenAppend.set(id, list);
      }
    }
  }
  for (const [id, txns] of readThenAppend) {
    if (txns.length < 2) continue;
    const [key, version] = id.split('\u0000') as [string, string];
    report({
      type: 'lost-update',
      txns,
      explanation: `${txns.map((t) => `T${t}`).join(' and ')} all read ${key} = ${version} and then appended to it: one of the appends was made without seeing the other`,
    });
  }

  // ---- The dependency graph over ok and info transactions ----
  const graph = new Map<number, Map<number, Set<EdgeType>>>();
  let edgeCount = 0;
  const addEdge = (from: number, to: number, type: EdgeType) => {
    if (from === to) return;
    let out = graph.get(from);
    if (out === undefined) {
      out = new Map();
      graph.set(from, out);
    }
    let types = out.get(to);
    if (types === undefined) {
      types = new Set();
      out.set(to, types);
      edgeCount++;
    }
    types.add(type);
  };
  const live = history.filter((t) => t.status !== 'fail');
  for (const [key, versions] of order) {
    // The position of each committed element in the order, and who wrote it.
    const position = new Map(versions.map((v, i) => [v, i]));
    // ww and rw for every append of key by a live transaction.
    for (const txn of live) {
      for (const mop of txn.mops) {
        if (mop.f !== 'append' || mop.key !== key) continue;
        const w = writerOf(key, mop.value);
        if (w === undefined || !w.last || w.txn !== txn) continue; // only a transaction's last append to a key is a version
        const at = position.get(mop.value);
        // Unobserved: it came after everything observed (the longest read misses it).
        const predecessorIndex = at === undefined ? versions.length - 1 : at - 1;
        // The installed predecessor: skip intermediate elements of the same writer.
        let p = predecessorIndex;
        while (p >= 0 && writerOf(key, versions[p]!)?.txn === txn) p--;
        const previous = p >= 0 ? versions[p] : undefined;
        if (previous !== undefined) {
          const pw = writerOf(key, previous);
          if (pw !== undefined && pw.txn.status !== 'fail') addEdge(pw.txn.id, txn.id, 'ww');
        }
        // Readers of the predecessor version (of the initial, empty list if there is none) did not see this append.
        for (const read of readsOf.get(key) ?? []) {
          const lastSeen = read.value.at(-1);
          if (lastSeen === previous) addEdge(read.txn.id, txn.id, 'rw');
        }
      }
    }
    // wr: a read ending in e depends on e's writer.
    for (const read of readsOf.get(key) ?? []) {
      const lastSeen = read.value.at(-1);
      if (lastSeen === undefined) continue;
      const w = writerOf(key, lastSeen);
      if (w !== undefined && w.txn.status !== 'fail') addEdge(w.txn.id, read.txn.id, 'wr');
    }
  }
  // Real-time order (a transitive reduction): every ok transaction that completed before T was invoked.
  const moments: Array<{ at: number; txn: Txn; kind: 'invoke' | 'complete' }> = [];
  for (const txn of live) {
    moments.push({ at: txn.invokeMs, txn, kind: 'invoke' });
    if (txn.status === 'ok') moments.push({ at: txn.completeMs, txn, kind: 'complete' });
  }
  // At equal times a completion comes after an invocation: real-time order needs a strict "before".
  moments.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'invoke' ? -1 : 1));
  let frontier: Txn[] = [];
  for (const moment of moments) {
    if (moment.kind === 'invoke') {
      for (const done of frontier) addEdge(done.id, moment.txn.id, 'rt');
    } else {
      frontier = frontier.filter((done) => graph.get(done.id)?.get(moment.txn.id)?.has('rt') !== true);
      frontier.push(moment.txn);
    }
  }

  // ---- Cycles ----
  const edgesOf = (allowed: ReadonlySet<EdgeType>) => (from: number) => {
    const out: Edge[] = [];
    for (const [to, types] of graph.get(from) ?? []) {
      const kept = new Set([...types].filter((t) => allowed.has(t)));
      if (kept.size > 0) out.push({ to, types: kept });
    }
    return out;
  };
  const found = new Set<string>();
  const cycleSearches: Array<{ type: string; allowed: EdgeType[]; rwExactlyOne: boolean; needs?: EdgeType }> = [
    { type: 'G0', allowed: ['ww'], rwExactlyOne: false },
    { type: 'G1c', allowed: ['ww', 'wr'], rwExactlyOne: false },
    { type: 'G-single', allowed: ['ww', 'wr', 'rw'], rwExactlyOne: true },
    { type: 'G2-item', allowed: ['ww', 'wr', 'rw'], rwExactlyOne: false },
    { type: 'G1c-realtime', allowed: ['ww', 'wr', 'rt'], rwExactlyOne: false, needs: 'rt' },
    { type: 'G-single-realtime', allowed: ['ww', 'wr', 'rw', 'rt'], rwExactlyOne: true, needs: 'rt' },
    { type: 'G2-item-realtime', allowed: ['ww', 'wr', 'rw', 'rt'], rwExactlyOne: false, needs: 'rt' },
  ];
  const vertices = live.map((t) => t.id);
  for (const search of cycleSearches) {
    const edges = edgesOf(new Set(search.allowed));
    for (const component of stronglyConnected(vertices, edges)) {
      if (component.length < 2) continue;
      const cycle = findCycle(component, edges, search.rwExactlyOne);
      if (cycle === undefined) continue;
      const key = [...cycle.map((step) => step.from)].sort((a, b) => a - b).join(',');
      if (search.needs !== undefined && !cycle.some((step) => step.types.has(search.needs!))) continue;
      if (!search.rwExactlyOne && search.type.startsWith('G2') && cycle.filter((s) => s.types.has('rw') && s.types.size === 1).length < 2) continue;
      if (found.has(key)) continue;
      found.add(key);
      report({ type: search.type, txns: cycle.map((s) => s.from), explanation: explainCycle(cycle, byId) });
    }
  }

  return { valid: anomalies.length === 0, anomalies, stats: { txns: history.length, keys: order.size, edges: edgeCount } };
}

interface Step {
  readonly from: number;
  readonly to: number;
  readonly types: Set<EdgeType>;
}

/** Tarjan's strongly connected components (iterative: histories are long). */
export function stronglyConnected(vertices: readonly number[], edges: (v: number) => Edge[]): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const components: number[][] = [];
  let next = 0;
  for (const root of vertices) {
    if (index.has(root)) continue;
    const work: Array<{ v: number; out: Edge[]; i: number }> = [{ v: root, out: edges(root), i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work.at(-1)!;
      if (frame.i < frame.out.length) {
        const w = frame.out[frame.i++]!.to;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, out: edges(w), i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent !== undefined) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(frame.v)!));
      if (low.get(frame.v) === index.get(frame.v)) {
        const component: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== frame.v);
        components.push(component);
      }
    }
  }
  return components;
}

/**
 * A short cycle inside one strongly connected component: breadth-first from each vertex back
 * to itself. With `rwExactlyOne`, the cycle takes exactly one edge that is only rw (an edge
 * that is also ww or wr may be taken as those).
 */
function findCycle(component: readonly number[], edges: (v: number) => Edge[], rwExactlyOne: boolean): Step[] | undefined {
  const inside = new Set(component);
  for (const start of component) {
    // State: (vertex, rw edges taken so far: 0 or 1).
    const parent = new Map<string, { state: string; step: Step } | null>();
    const startState = `${start}:0`;
    parent.set(startState, null);
    const queue: Array<{ v: number; rw: number }> = [{ v: start, rw: 0 }];
    while (queue.length > 0) {
      const { v, rw } = queue.shift()!;
      for (const edge of edges(v)) {
        if (!inside.has(edge.to)) continue;
        const rwOnly = edge.types.size === 1 && edge.types.has('rw');
        const nextRw = rw + (rwOnly ? 1 : 0);
        if (rwExactlyOne && nextRw > 1) continue;
        const step: Step = { from: v, to: edge.to, types: edge.types };
        if (edge.to === start && (!rwExactlyOne || nextRw === 1)) {
          const cycle: Step[] = [step];
          let state = `${v}:${rw}`;
          for (let link = parent.get(state); link !== null && link !== undefined; link = parent.get(state)) {
            cycle.unshift(link.step);
            state = link.state;
          }
          return cycle;
        }
        const state = `${edge.to}:${rwExactlyOne ? nextRw : 0}`;
        if (parent.has(state)) continue;
        parent.set(state, { state: `${v}:${rwExactlyOne ? rw : 0}`, step });
        queue.push({ v: edge.to, rw: rwExactlyOne ? nextRw : 0 });
      }
    }
  }
  return undefined;
}

function explainCycle(cycle: readonly Step[], byId: ReadonlyMap<number, Txn>): string {
  const say: Record<EdgeType, string> = {
    ww: 'appended after',
    wr: 'was read by',
    rw: 'read a version before an append of',
    rt: 'completed before the invocation of',
  };
  const parts = cycle.map((step) => {
    const type = (['wr', 'ww', 'rw', 'rt'] as const).find((t) => step.types.has(t))!;
    const subject = type === 'ww' ? `T${step.to} ${say.ww} T${step.from}` : `T${step.from} ${say[type]} T${step.to}`;
    return `${subject} (${type})`;
  });
  const span = cycle.map((s) => byId.get(s.from)).filter((t): t is Txn => t !== undefined);
  return `${parts.join('; ')}: a cycle, so no serial order${cycle.some((s) => s.types.has('rt')) ? ' consistent with real time' : ''} explains ${span.map((t) => `T${t.id}`).join(', ')}`;
}

function isPrefix(shorter: readonly number[], longer: readonly number[]): boolean {
  return shorter.length <= longer.length && shorter.every((v, i) => longer[i] === v);
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => b[i] === v);
}

function show(list: readonly number[]): string {
  return `[${list.join(' ')}]`;
}
