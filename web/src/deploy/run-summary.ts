import { ApiError, describeError } from '../lib/api.ts';
import { formatDuration } from '../lib/format.ts';
import type { DeployStatus, FailedCommand } from './deploy-api.ts';

/** The one line that says how a deploy or destroy ended. */
export function summarizeRun(run: { kind: 'deploy' | 'destroy'; status: DeployStatus; durationMs: number | null; failedCommand?: FailedCommand; message?: string }): string {
  const what = run.kind === 'deploy' ? 'Deploy' : 'Destroy';
  const took = run.durationMs === null ? '' : ` after ${formatDuration(run.durationMs)}`;
  switch (run.status) {
    case 'running':
      return `${what} running…`;
    case 'succeeded':
      return `${what} succeeded in ${run.durationMs === null ? '?' : formatDuration(run.durationMs)}`;
    case 'failed': {
      const f = run.failedCommand;
      return f ? `${what} failed${took}: command ${f.index} (${f.name}) exited with code ${f.exitCode}` : `${what} failed${took}${run.message ? `: ${run.message}` : ''}`;
    }
    case 'error':
      return `${what} could not run${took}${run.message ? `: ${run.message}` : ''}`;
    case 'cancelled':
      return `${what} cancelled${took}`;
  }
}

/** Why a Cancel did not end the run, in words: 'still-stopping' (the server's wait ran out, HTTP 202), or the error of the request. */
export function describeCancelProblem(kind: 'deploy' | 'destroy', problem: unknown): string {
  if (problem === 'still-stopping') return `The ${kind} has not stopped yet: the server is still cancelling it. It shows as cancelled once it ends; press Cancel again to wait for it.`;
  if (problem instanceof ApiError && problem.status === 409) {
    const server = typeof problem.details?.server === 'string' ? ` (${problem.details.server})` : '';
    return `This ${kind} is running on another server replica${server}: it can only be cancelled there.`;
  }
  if (problem instanceof ApiError && problem.status === 404) return `The server no longer knows this ${kind}: it cannot be cancelled.`;
  return `Could not cancel the ${kind}: ${describeError(problem)}`;
}
