export { assert, unreachable, AssertionFailure } from './assert.js';
export { Prng } from './prng.js';
export { type Term, type Index, type NodeId, term, index, nodeId } from './types.js';
