// Branded number types: a Term can never be passed where an Index is expected.
// Values are plain JavaScript numbers (safe integers) at run time.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type Term = Brand<number, 'Term'>;
export type Index = Brand<number, 'Index'>;
export type NodeId = Brand<number, 'NodeId'>;

export function term(value: number): Term {
  return value as Term;
}
export function index(value: number): Index {
  return value as Index;
}
export function nodeId(value: number): NodeId {
  return value as NodeId;
}

/** Omit over each member of a union (plain Omit flattens the union first). */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
