// The lab's nparallel(): how many worker processes are inside the same phase right now.
// Each caller creates mr-worker-<phase>-<pid> in the working directory, counts the files
// of that phase whose process is alive, sleeps a second, and removes its file.

import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export async function nparallel(phase: string): Promise<number> {
  const mine = `mr-worker-${phase}-${process.pid}`;
  writeFileSync(mine, 'x');
  const pattern = new RegExp(`^mr-worker-${phase}-(\\d+)$`);
  let alive = 0;
  for (const name of readdirSync('.')) {
    const match = pattern.exec(name);
    if (match !== null && isAlive(Number(match[1]))) alive += 1;
  }
  await sleep(1000);
  rmSync(mine, { force: true });
  return alive;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
