// The bank checker (after Jepsen's bank test): transfers move money between accounts, so every
// committed read of all the accounts must see the same total, and no account may go below 0.
// It sees fractured reads and lost transfers only when a total changes; list-append.ts sees
// the rest. Pure.

export interface BankRead {
  readonly txn: number;
  /** Account → balance, as one committed read saw them. */
  readonly balances: ReadonlyMap<string, number>;
}

export interface BankProblem {
  readonly txn: number;
  readonly explanation: string;
}

export function checkBank(reads: readonly BankRead[], accounts: readonly string[], total: number): { valid: boolean; problems: BankProblem[] } {
  const problems: BankProblem[] = [];
  const known = new Set(accounts);
  for (const read of reads) {
    let sum = 0;
    for (const [account, balance] of read.balances) {
      if (!known.has(account)) problems.push({ txn: read.txn, explanation: `T${read.txn} read an account nobody opened: ${account}` });
      if (balance < 0) problems.push({ txn: read.txn, explanation: `T${read.txn} read ${account} = ${balance}, below zero` });
      sum += balance;
    }
    const missing = accounts.filter((a) => !read.balances.has(a));
    if (missing.length > 0) problems.push({ txn: read.txn, explanation: `T${read.txn} read no balance for ${missing.join(', ')}` });
    else if (sum !== total) problems.push({ txn: read.txn, explanation: `T${read.txn} read a total of ${sum}, not ${total}: ${[...read.balances].map(([a, b]) => `${a}=${b}`).join(' ')}` });
  }
  return { valid: problems.length === 0, problems };
}
