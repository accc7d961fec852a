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
  }
}
