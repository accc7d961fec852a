import { describe, expect, it } from 'vitest';
import { ApiError } from '../lib/api.ts';
import { describeCancelProblem, summarizeRun } from './run-summary.ts';

describe('summarizeRun', () => {
  it('names the failed command and its exit code', () => {
    expect(summarizeRun({ kind: 'deploy', status: 'failed', durationMs: 1500, failedCommand: { index: 2, name: 'migrate', exitCode: 3 } })).toBe(
      'Deploy failed after 1.5 s: command 2 (migrate) exited with code 3',
    );
  });
  it('says why a run could not start', () => {
    expect(summarizeRun({ kind: 'destroy', status: 'error', durationMs: 20, message: 'no okteto.yml in the workspace' })).toBe('Destroy could not run after 20 ms: no okteto.yml in the workspace');
  });
  it('reports success with its duration', () => {
    expect(summarizeRun({ kind: 'deploy', status: 'succeeded', durationMs: 65_000 })).toBe('Deploy succeeded in 1 min 5 s');
  });
});

describe('summarizeRun of a cancelled run', () => {
  it('says it was cancelled and after how long, not that it broke', () => {
    expect(summarizeRun({ kind: 'destroy', status: 'cancelled', durationMs: 4200, message: 'the run was cancelled' })).toBe('Destroy cancelled after 4.2 s');
  });
});

describe('describeCancelProblem', () => {
  it('names the replica that runs a run this server cannot cancel', () => {
    const conflict = new ApiError(409, 'conflict', 'the run "r1" is running on another server replica (host-b:4242): cancel it there', { server: 'host-b:4242' });
    expect(describeCancelProblem('deploy', conflict)).toBe('This deploy is running on another server replica (host-b:4242): it can only be cancelled there.');
  });
  it('says a run that outlasted the wait is still being cancelled', () => {
    expect(describeCancelProblem('deploy', 'still-stopping')).toMatch(/^The deploy has not stopped yet: the server is still cancelling it\./);
  });
  it('passes other failures on with their message', () => {
    expect(describeCancelProblem('destroy', new Error('Failed to fetch'))).toBe('Could not cancel the destroy: Failed to fetch');
  });
});
