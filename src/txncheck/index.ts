export { type Anomaly, type CheckResult, checkListAppend, type EdgeType, type MicroOp, stronglyConnected, type Txn } from './list-append.js';
export { type BankProblem, type BankRead, checkBank } from './bank.js';
