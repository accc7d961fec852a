import { describe, expect, it } from 'vitest';
import { parseResourceBytes, parseWorkspaceResources } from './workspace-resources.ts';

describe('workspace resources', () => {
  it('reads limits as numbers or as the command line writes them', () => {
    expect(parseWorkspaceResources({ cpus: '1.5', memory: '2g', pids: 512, disk: '10GiB' })).toEqual({ ok: true, value: { cpus: 1.5, memory: 2 * 1024 ** 3, pids: 512, disk: 10 * 1024 ** 3 } });
    expect(parseWorkspaceResources({ memory: 64 * 1024 ** 2 })).toEqual({ ok: true, value: { memory: 64 * 1024 ** 2 } });
    expect(parseWorkspaceResources(undefined)).toEqual({ ok: true, value: {} });
    expect(parseResourceBytes('512m', 'x')).toEqual({ ok: true, value: 512 * 1024 ** 2 });
  });

  it('refuses bad values with a message naming the limit', () => {
    expect(parseWorkspaceResources({ cpus: 0 })).toMatchObject({ ok: false, error: expect.stringMatching(/"resources.cpus": expected a number of CPUs above 0/) });
    expect(parseWorkspaceResources({ memory: 'lots' })).toMatchObject({ ok: false, error: expect.stringMatching(/"resources.memory": expected a size like 512m/) });
    expect(parseWorkspaceResources({ memory: '1m' })).toMatchObject({ ok: false, error: expect.stringMatching(/at least 6m/) });
    expect(parseWorkspaceResources({ pids: 2.5 })).toMatchObject({ ok: false, error: expect.stringMatching(/"resources.pids"/) });
    expect(parseWorkspaceResources({ gpus: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/unknown limit "gpus"/) });
    expect(parseWorkspaceResources('2g')).toMatchObject({ ok: false, error: expect.stringMatching(/must be an object/) });
  });
});
