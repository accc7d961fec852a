import { describe, expect, it } from 'vitest';
import { judgePod } from './pod-status.ts';
import { expandReferences } from './workload-env.ts';

describe('$(VAR) expansion as Kubernetes does it', () => {
  const vars: Record<string, string> = { HOST: 'db', PORT: '5432' };
  const lookup = (name: string) => vars[name];
  it('expands defined names, keeps unknown ones and escapes $$', () => {
    expect(expandReferences('postgres://$(HOST):$(PORT)/x', lookup)).toBe('postgres://db:5432/x');
    expect(expandReferences('$(MISSING)-$(HOST)', lookup)).toBe('$(MISSING)-db');
    expect(expandReferences('$$(HOST) costs $5 and $$', lookup)).toBe('$(HOST) costs $5 and $');
    expect(expandReferences('open $(HOST', lookup)).toBe('open $(HOST');
  });
});

describe('pod status in Kubernetes\' words', () => {
  const pod = (status: object) => ({ metadata: { uid: 'u' }, spec: { containers: [{ name: 'workspace', image: 'x' }] }, status }) as never;
  it('reports evicted, image pull back-off and OOMKilled as errors, a running container as up', () => {
    expect(judgePod(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }))).toEqual({ state: 'error', reason: 'Evicted: The node was low on resource: memory.' });
    expect(judgePod(pod({ phase: 'Pending', initContainerStatuses: [{ name: 'wharf-runtime', state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "w"' } } }] }))).toMatchObject({ state: 'error', reason: expect.stringMatching(/^ImagePullBackOff: Back-off pulling image/) });
    expect(judgePod(pod({ phase: 'Running', containerStatuses: [{ name: 'workspace', restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off' } }, lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } } }] }))).toMatchObject({ state: 'error', reason: expect.stringMatching(/CrashLoopBackOff.*OOMKilled/) });
    expect(judgePod(pod({ phase: 'Running', containerStatuses: [{ name: 'workspace', restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }] }))).toMatchObject({ state: 'up' });
    expect(judgePod(pod({ phase: 'Pending' }))).toEqual({ state: 'pending' });
  });
});
