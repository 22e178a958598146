// Message transport between members, injected. Delivery is best effort: messages may be
// lost, delayed, duplicated or reordered, and the protocols above retry. platform/
// implements it over TCP, sim/ over the simulated network.

import type { NodeId } from '../stdx/types.js';

export interface Transport<M> {
  /** Queues `message` for `to`. Never throws for an unreachable peer; it drops instead. */
  send(to: NodeId, message: M): void;
}
