/**
 * Whether a process with this pid exists and may be signalled by us (signal 0 checks without
 * sending anything). One we may not signal (EPERM) counts as gone: it is no agent of ours.
 */
export function isProcessAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
