import { describe, expect, it } from 'vitest';
import { decodeBuildkitStatus, encodeBuildkitStatus } from './buildkit-status.ts';
import { parseBuilderEndpoint } from './builder-client.ts';
import { createRunLog } from '../index.ts';

describe('builder endpoint', () => {
  it('reads unix sockets and TCP addresses, and explains the rest', () => {
    expect(parseBuilderEndpoint('unix:///var/run/docker.sock')).toEqual({ ok: true, value: { display: 'unix:///var/run/docker.sock', socketPath: '/var/run/docker.sock' } });
    expect(parseBuilderEndpoint('tcp://10.0.0.5:2375')).toEqual({ ok: true, value: { display: 'tcp://10.0.0.5:2375', host: '10.0.0.5', port: 2375 } });
    expect(parseBuilderEndpoint('tcp://[::1]:2375')).toMatchObject({ ok: true, value: { host: '::1', port: 2375 } });
    expect(parseBuilderEndpoint('unix://relative.sock').ok).toBe(false);
    expect(parseBuilderEndpoint('docker.sock')).toEqual({ ok: false, error: 'builder "docker.sock" is not understood: use unix:///path/to/docker.sock or tcp://host:port' });
  });
});

describe('BuildKit status messages', () => {
  it('decodes vertexes and logs as BuildKit encodes them', () => {
    const aux = encodeBuildkitStatus({
      vertexes: [{ digest: 'sha256:aa', name: '[2/2] RUN x', started: true }],
      logs: [{ vertex: 'sha256:aa', stream: 2, data: 'warn\n' }],
    });
    const status = decodeBuildkitStatus(aux);
    expect(status.vertexes).toEqual([{ digest: 'sha256:aa', name: '[2/2] RUN x', cached: false, started: true, completed: false, error: '' }]);
    expect(status.logs).toEqual([{ vertex: 'sha256:aa', stream: 2, data: Buffer.from('warn\n') }]);
  });

  it('throws on bytes that are not a status message', () => {
    expect(() => decodeBuildkitStatus(Buffer.from([0x0a, 0xff, 0xff, 0xff]).toString('base64'))).toThrow();
  });
});

describe('run log', () => {
  it('keeps output up to its bound, says so once, and still delivers everything live', () => {
    const log = createRunLog({ startedAt: 0, maxOutputBytes: 10, now: () => 5 });
    const live: string[] = [];
    log.subscribe((e) => live.push(e.type === 'output' ? e.text : e.type));
    for (const text of ['12345\n', '67890\n', 'abcde\n']) log.emit({ type: 'output', index: 1, stream: 'stdout', text });
    log.emit({ type: 'done', status: 'succeeded', durationMs: 5 });
    expect(live).toEqual(['12345\n', '67890\n', 'abcde\n', 'done']);
    expect(log.events.map((e) => e.type)).toEqual(['output', 'warning', 'done']);
    expect(log.truncated).toBe(true);
    expect(log.events.every((e) => e.at === 5)).toBe(true);
    const stored = log.snapshot(3);
    expect(stored.events.map((e) => e.type)).toEqual(['warning', 'done']);
    expect(stored.truncated).toBe(true);
  });
});
