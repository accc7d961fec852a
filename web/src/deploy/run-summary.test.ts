import { describe, expect, it } from 'vitest';
import { summarizeRun } from './run-summary.ts';

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
