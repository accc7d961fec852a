import type { Duplex } from 'node:stream';
import { createFrameDecoder, encodeFrame, type DeployEvent, type DeployRun } from '../../common/index.ts';
import { createRunLog, summariseRun, type BoardReply, type BoardRequest, type HostMessage, type RunLog } from '../index.ts';

/**
 * The agent's half of the run board (../protocol.ts): the workspace's deploy runs as the replica
 * running each one reports it, so that any replica can follow, list and cancel it. The agent
 * runs nothing here: the build stays with the replica that talks to the builder. What the agent
 * adds is that the log and the control outlive the replica's memory being elsewhere, and that a
 * replica going away mid-run is said out loud (the run ends as `error`, watchers get `done`).
 */
type Entry = {
  run: DeployRun;
  log: RunLog;
  /** The running replica's channel, while it is there. */
  host: Duplex | undefined;
  forget?: NodeJS.Timeout;
};

const MAX_HOST_FRAME = 16 * 1024 * 1024;

const frame = (message: BoardReply | HostMessage): Buffer => encodeFrame(Buffer.from(JSON.stringify(message)));

export type RunBoard = ReturnType<typeof createRunBoard>;

export function createRunBoard(options: { log: (event: string, fields?: Record<string, unknown>) => void }) {
  const entries = new Map<string, Entry>();

  function active(): Entry | undefined {
    return [...entries.values()].find((e) => !e.log.done);
  }

  function finish(entry: Entry, retentionMs: number): void {
    clearTimeout(entry.forget);
    entry.forget = setTimeout(() => entries.delete(entry.run.id), retentionMs);
    entry.forget.unref();
  }

  /** The replica that runs it went away (or its channel broke) before the run ended. */
  function interrupt(entry: Entry, retentionMs: number): void {
    const durationMs = Date.now() - Date.parse(entry.run.startedAt);
    const message = `the run was interrupted: the server replica running it (${entry.run.server ?? 'unknown'}) went away before it ended; the builder stops a build whose client is gone`;
    Object.assign(entry.run, { status: 'error', durationMs, message });
    entry.log.emit({ type: 'done', status: 'error', message, durationMs });
    options.log('deploy.interrupted', { id: entry.run.id, server: entry.run.server });
    finish(entry, retentionMs);
  }

  function host(stream: Duplex, request: Extract<BoardRequest, { op: 'host' }>): void {
    const id = String(request.run?.id ?? '');
    const retentionMs = Math.max(0, Number(request.retentionMs) || 0);
    const running = active();
    const again = entries.get(id);
    if (!id || (running && running.run.id !== id)) {
      stream.end(frame({ ok: false, error: running ? `a deploy or destroy of this workspace is already running (${running.run.id})` : 'no run id', conflict: running?.run.id }));
      return;
    }
    if (again?.host || again?.log.done) {
      stream.end(frame({ ok: false, error: `the run ${id} is already hosted or has ended`, conflict: id }));
      return;
    }
    // New, or the same run coming back after this agent restarted (its replica re-hosts it).
    const entry: Entry = again ?? {
      run: { ...request.run },
      log: createRunLog({ startedAt: Date.parse(request.run.startedAt), maxOutputBytes: Math.max(0, Number(request.maxOutputBytes) || 0) }),
      host: undefined,
    };
    if (!again) for (const event of Array.isArray(request.events) ? request.events : []) entry.log.append(event);
    entry.host = stream;
    entries.set(id, entry);
    stream.write(frame({ ok: true }));
    const decoder = createFrameDecoder(MAX_HOST_FRAME, {
      onError: () => stream.destroy(),
      onFrame: (data) => {
        let message: HostMessage;
        try {
          message = JSON.parse(data.toString('utf8')) as HostMessage;
        } catch {
          return;
        }
        if (message.t === 'event') entry.log.append(message.event);
        else if (message.t === 'run') entry.run = { ...message.run, id };
      },
    });
    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    stream.on('error', () => {});
    // The host is done sending: close our side too, or the channel stays half open for good.
    stream.on('end', () => stream.end());
    stream.on('close', () => {
      if (entry.host !== stream) return;
      entry.host = undefined;
      if (entry.log.done) finish(entry, retentionMs);
      else interrupt(entry, retentionMs);
    });
  }

  function watch(stream: Duplex, id: string): void {
    const entry = entries.get(id);
    if (!entry) {
      stream.end(frame({ ok: false, error: `no run "${id}" on the board`, notFound: true }));
      return;
    }
    stream.write(frame({ ok: true, run: summariseRun(entry.run) }));
    const send = (event: DeployEvent) => {
      // A watcher that falls far behind is cut off; it can watch again and get the replay.
      if (stream.writableLength > MAX_HOST_FRAME) return stream.destroy();
      stream.write(frame({ t: 'event', event }));
      if (event.type === 'done') stream.end();
    };
    const replay = [...entry.log.events];
    const unsubscribe = entry.log.done ? () => {} : entry.log.subscribe(send);
    stream.on('close', unsubscribe);
    stream.on('error', () => {});
    for (const event of replay) send(event);
    if (entry.log.done && replay.at(-1)?.type !== 'done') stream.end();
  }

  function answer(stream: Duplex, request: BoardRequest): void {
    const entry = 'id' in request ? entries.get(String(request.id)) : undefined;
    if (request.op === 'list') {
      stream.end(frame({ ok: true, runs: [...entries.values()].map((e) => summariseRun(e.run)) }));
      return;
    }
    if (!entry) {
      stream.end(frame({ ok: false, error: `no run "${'id' in request ? request.id : ''}" on the board`, notFound: true }));
      return;
    }
    if (request.op === 'cancel' && !entry.log.done) {
      options.log('deploy.cancel_requested', { id: entry.run.id });
      entry.host?.write(frame({ t: 'cancel' }));
    }
    const events = request.op === 'get' ? { events: [...entry.log.events], ...(entry.log.truncated ? { logTruncated: true } : {}) } : {};
    stream.end(frame({ ok: true, run: { ...summariseRun(entry.run), ...events } }));
  }

  return {
    /** Serves one board request on its own channel (the subsystem decoded the first frame). */
    serve(stream: Duplex, request: BoardRequest): void {
      if (request.op === 'host') host(stream, request);
      else if (request.op === 'watch') watch(stream, String(request.id));
      else answer(stream, request);
    },
    isBoardOp(op: unknown): boolean {
      return op === 'host' || op === 'watch' || op === 'get' || op === 'list' || op === 'cancel';
    },
  };
}
