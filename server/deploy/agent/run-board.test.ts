import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame, type DeployEvent, type DeployEventInput, type DeployRun } from '../../common/index.ts';
import { createRunBoard } from './run-board.ts';

/** Two connected in-memory streams, as an SSH channel's two ends; destroying one closes both. */
function channel(): { agent: Duplex; server: Duplex; received: unknown[]; send(message: unknown): void } {
  const ends: Duplex[] = [];
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      destroy(err, callback) {
        if (!other().destroyed) other().destroy();
        callback(err);
      },
    });
  ends.push(make(() => ends[1]), make(() => ends[0]));
  const [agent, server] = ends;
  const received: unknown[] = [];
  const decoder = createFrameDecoder(1 << 20, { onFrame: (f) => received.push(JSON.parse(f.toString('utf8'))), onError: () => {} });
  server.on('data', (chunk: Buffer) => decoder.push(chunk));
  server.on('error', () => {});
  return { agent, server, received, send: (message) => server.write(encodeFrame(Buffer.from(JSON.stringify(message)))) };
}

const tick = () => new Promise((r) => setImmediate(r));

function run(id: string): DeployRun {
  return { id, workspace: 'w', kind: 'deploy', mode: null, status: 'running', startedAt: new Date().toISOString(), durationMs: null, commands: [], server: 'host-a:1' };
}

const event = (e: DeployEventInput): DeployEvent => ({ at: 0, ...e }) as DeployEvent;

describe('run board', () => {
  const board = createRunBoard({ log: () => {} });

  it('takes one run at a time, replays and streams it to watchers, passes a cancel to its host', async () => {
    const host = channel();
    board.serve(host.agent, { op: 'host', run: run('r1'), events: [], retentionMs: 60_000, maxOutputBytes: 1 << 20 });
    await tick();
    expect(host.received).toEqual([{ ok: true }]);
    host.send({ t: 'event', event: event({ type: 'phase', phase: 'packing', message: 'packing' }) });
    await tick();

    const other = channel();
    board.serve(other.agent, { op: 'host', run: run('r2'), events: [], retentionMs: 60_000, maxOutputBytes: 1 << 20 });
    await tick();
    expect(other.received).toEqual([expect.objectContaining({ ok: false, conflict: 'r1' })]);

    const watcher = channel();
    board.serve(watcher.agent, { op: 'watch', id: 'r1' });
    await tick();
    expect(watcher.received).toEqual([
      { ok: true, run: expect.objectContaining({ id: 'r1', status: 'running' }) },
      { t: 'event', event: expect.objectContaining({ type: 'phase' }) },
    ]);

    const cancel = channel();
    board.serve(cancel.agent, { op: 'cancel', id: 'r1' });
    await tick();
    expect(cancel.received).toEqual([{ ok: true, run: expect.objectContaining({ id: 'r1' }) }]);
    expect(host.received.at(-1)).toEqual({ t: 'cancel' });

    host.send({ t: 'run', run: { ...run('r1'), status: 'cancelled', durationMs: 5 } });
    host.send({ t: 'event', event: event({ type: 'done', status: 'cancelled', durationMs: 5 }) });
    await tick();
    host.server.end();
    await tick();
    expect(watcher.received.at(-1)).toEqual({ t: 'event', event: expect.objectContaining({ type: 'done', status: 'cancelled' }) });
    expect(watcher.agent.writableEnded).toBe(true);

    const got = channel();
    board.serve(got.agent, { op: 'get', id: 'r1' });
    await tick();
    expect(got.received[0]).toMatchObject({ ok: true, run: { id: 'r1', status: 'cancelled', events: [{ type: 'phase' }, { type: 'done' }] } });
  });

  it('ends a run whose host goes away as interrupted, for every watcher, and takes the next one', async () => {
    const host = channel();
    board.serve(host.agent, { op: 'host', run: run('r3'), events: [event({ type: 'phase', phase: 'reading-manifest', message: 'reading' })], retentionMs: 60_000, maxOutputBytes: 1 << 20 });
    const watcher = channel();
    await tick();
    board.serve(watcher.agent, { op: 'watch', id: 'r3' });
    await tick();
    host.server.destroy();
    await tick();
    expect(watcher.received.at(-1)).toEqual({
      t: 'event',
      event: expect.objectContaining({ type: 'done', status: 'error', message: expect.stringMatching(/interrupted: the server replica running it \(host-a:1\) went away/) }),
    });
    const listed = channel();
    board.serve(listed.agent, { op: 'list' });
    await tick();
    expect(listed.received[0]).toMatchObject({ ok: true, runs: expect.arrayContaining([expect.objectContaining({ id: 'r3', status: 'error' })]) });

    const next = channel();
    board.serve(next.agent, { op: 'host', run: run('r4'), events: [], retentionMs: 60_000, maxOutputBytes: 1 << 20 });
    await tick();
    expect(next.received).toEqual([{ ok: true }]);
    const unknown = channel();
    board.serve(unknown.agent, { op: 'watch', id: 'nope' });
    await tick();
    expect(unknown.received[0]).toMatchObject({ ok: false, notFound: true });
  });
});
