// Signals to another process on this machine: the dashboard's fault buttons (server/faults.ts,
// allowed only with --allow-faults) stop, pause and resume the members of a local cluster.

export type FaultSignal = 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'SIGCONT';

/** Sends `signal` to `pid`; throws with the reason (ESRCH: no such process, EPERM: not ours). */
export function signalProcess(pid: number, signal: FaultSignal): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`${pid} is not a process id that may be signalled`);
  try {
    process.kill(pid, signal);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new Error(code === 'ESRCH' ? `no process ${pid}` : code === 'EPERM' ? `process ${pid} belongs to another user` : (error as Error).message);
  }
}
