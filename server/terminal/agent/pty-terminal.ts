import { writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import pty from 'node-pty';
import { isoTimestamp, isProcessAlive } from '../../common/index.ts';
import { createFanout, type FanoutMember, type FanoutSink } from '../fanout.ts';
import { encodeOutputFrame } from '../frames.ts';
import type { ExitStatus, Snapshot, TerminalInfo } from '../protocol.ts';
import type { Screen, ScreenOptions } from './screen.ts';

export type PtyTerminalLimits = {
  /** Per attachment: bytes queued before it is cut off and resynced. */
  queueBytes: number;
  scrollback: number;
  /** How long a terminal with nobody attached lives on. */
  graceMs: number;
  /** After SIGHUP, how long before SIGKILL. */
  killTimeoutMs: number;
};

export type PtyTerminalOptions = {
  id: string;
  file: string;
  args: string[];
  /** Absolute working directory, and how to show it (relative to the workspace). */
  cwd: string;
  cwdLabel: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  limits: PtyTerminalLimits;
  /** Makes the headless screen kept beside the pty. */
  createScreen: (options: ScreenOptions) => Screen;
  onRemoved: () => void;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

/** One consumer of the terminal stream (a control-server replica, usually). */
export type Attachment = {
  input(data: Buffer): void;
  /** The smallest size among this attachment's editors, or null when it has none. */
  setSize(size: { cols: number; rows: number } | null): void;
  setClients(count: number): void;
  /** Answers with a snapshot sent to this attachment, in order with its stream. */
  requestSnapshot(rid: number): void;
  detach(): void;
};

type AttachmentState = {
  member?: FanoutMember;
  size: { cols: number; rows: number } | null;
  clients: number;
  close: (reason: string) => void;
};

const signalNames = Object.entries(osConstants.signals);
/** Longest delay setTimeout accepts. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** While paused, how often to check whether the process died (its last output must still be read). */
const DEAD_POLL_MS = 50;
/**
 * A pty hands over a few KB per read. While output streams (a sizeable batch went out less than
 * COALESCE_MS ago) reads are gathered for COALESCE_MS into one frame, up to MAX_BATCH_BYTES;
 * otherwise, as for a keystroke's echo, a read goes out in the same event-loop turn. Every frame
 * costs the control server and each client one websocket message, and on this path the cost is
 * per message more than per byte: 4 ms instead of 1 took a third off the control server's CPU
 * with ten clients, and 8 ms instead of 4 (half the messages) another fifth with one client, with
 * slightly higher throughput in six alternating pairs. 8 ms is still well below what a person sees.
 */
const COALESCE_MS = 8;
const STREAMING_BATCH_BYTES = 1024;
const MAX_BATCH_BYTES = 256 * 1024;
/** While the program does not read its input and the pty's input buffer is full, retry this often. */
const INPUT_RETRY_MS = 2;
/** Answers to terminal queries are dropped while this much input waits for the program. */
const MAX_PENDING_REPLY_BYTES = 64 * 1024;

function nameSignal(signal: number | undefined): string | null {
  if (!signal) return null;
  return signalNames.find(([, n]) => n === signal)?.[0] ?? `SIG${signal}`;
}

export type PtyTerminal = ReturnType<typeof createPtyTerminal>;

/**
 * A pty, the headless screen beside it and the fan-out to its attachments. Output is read,
 * forwarded and parsed in batches of whatever arrived in one event-loop turn; the pty is paused
 * only when every attachment is congested or the screen parser falls behind.
 */
export function createPtyTerminal(options: PtyTerminalOptions) {
  const { limits } = options;
  let cols = options.cols;
  let rows = options.rows;
  const proc = pty.spawn(options.file, options.args, {
    name: options.env.TERM ?? 'xterm-256color',
    cols,
    rows,
    cwd: options.cwd,
    env: options.env,
    encoding: null,
  });
  const createdAt = isoTimestamp();
  const attachments = new Set<AttachmentState>();
  let exited: ExitStatus | undefined;
  let exitSeq: number | undefined;
  let removed = false;
  let killing = false;
  let paused = false;
  let graceTimer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let deadPoll: NodeJS.Timeout | undefined;

  const screen = options.createScreen({
    cols,
    rows,
    scrollback: limits.scrollback,
    onParsed: () => updatePause(),
    onReply: (reply) => {
      // A program that floods queries without reading the answers gets no more of them once its
      // input is backed up: they would only pile up here.
      if (exited || removed || pendingInputBytes > MAX_PENDING_REPLY_BYTES) return;
      writeInput(Buffer.from(reply, 'utf8'));
    },
  });
  const fanout = createFanout({
    queueBytes: limits.queueBytes,
    requestSnapshot: takeSnapshot,
    onCongestionChange: () => updatePause(),
    onRequestError: (err) => options.log('terminal.snapshot_failed', { terminal: options.id, error: err.message }),
  });

  function takeSnapshot(): Promise<Snapshot> {
    const seq = fanout.seq;
    const exitedThen = exitSeq !== undefined && exitSeq < seq ? exited : undefined;
    return screen.snapshot().then((state) => ({ ...state, seq, ...(exitedThen ? { exited: exitedThen } : {}) }));
  }

  let batch: Buffer[] = [];
  let batchBytes = 0;
  let flushTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  let lastFlushAt = 0;
  let lastFlushBytes = 0;

  function flush(): void {
    if (flushTimer) {
      clearTimeout(flushTimer as NodeJS.Timeout);
      clearImmediate(flushTimer as NodeJS.Immediate);
      flushTimer = undefined;
    }
    if (batch.length === 0) return;
    lastFlushAt = performance.now();
    lastFlushBytes = batchBytes;
    // Gathered straight into the frame the attachments send: no separate concatenation.
    const data = encodeOutputFrame(batch, batchBytes);
    batch = [];
    batchBytes = 0;
    // The screen first: a snapshot requested while fanning out must already include this chunk.
    screen.write(data);
    fanout.output(data);
    updatePause();
  }

  /**
   * Input is written to the pty's non-blocking fd right away. node-pty's own write goes through
   * the libuv thread pool: two thread hand-offs (and wake-ups) per keystroke, which on the
   * 2-core VM cost about 25 µs of the echo's median. What the kernel does not take (a large paste
   * into a program that is not reading) waits here, in order, and is retried.
   */
  const ptyFd = (proc as unknown as { fd?: unknown }).fd;
  let pendingInput: Buffer[] = [];
  let pendingInputBytes = 0;
  let inputRetry: NodeJS.Timeout | undefined;

  /** Bytes of `data` the pty took now; the rest must wait. */
  function writeNow(data: Buffer): number {
    try {
      return writeSync(ptyFd as number, data);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      // The pty is gone (EIO once the program exited): the input has nowhere to go.
      pendingInput = [];
      pendingInputBytes = 0;
      return data.length;
    }
  }

  function writePendingInput(): void {
    inputRetry = undefined;
    while (pendingInput.length > 0 && !exited && !removed) {
      const head = pendingInput[0];
      const written = writeNow(head);
      if (pendingInput.length === 0) return;
      pendingInputBytes -= written;
      if (written < head.length) {
        pendingInput[0] = head.subarray(written);
        inputRetry = setTimeout(writePendingInput, INPUT_RETRY_MS);
        return;
      }
      pendingInput.shift();
    }
  }

  function writeInput(data: Buffer): void {
    if (typeof ptyFd !== 'number') return proc.write(data as unknown as string);
    if (pendingInput.length === 0) {
      const written = writeNow(data);
      if (written === data.length) return;
      data = data.subarray(written);
    }
    // The caller's buffer may be a view into a reused frame buffer.
    pendingInput.push(Buffer.from(data));
    pendingInputBytes += data.length;
    inputRetry ??= setTimeout(writePendingInput, INPUT_RETRY_MS);
  }

  proc.onData((chunk) => {
    const data = chunk as unknown as Buffer;
    batch.push(data);
    batchBytes += data.length;
    if (batchBytes >= MAX_BATCH_BYTES) return flush();
    if (flushTimer) return;
    const streaming = lastFlushBytes >= STREAMING_BATCH_BYTES && performance.now() - lastFlushAt < COALESCE_MS;
    flushTimer = streaming ? setTimeout(flush, COALESCE_MS) : setImmediate(flush);
  });

  function updatePause(): void {
    const want = !exited && !killing && !removed && (fanout.congested || screen.backlog > limits.queueBytes);
    if (want === paused) return;
    paused = want;
    if (want) {
      proc.pause();
      deadPoll = setInterval(() => {
        // node-pty drops unread output shortly after the process exits: read it while we can.
        if (!isProcessAlive(proc.pid)) {
          clearInterval(deadPoll);
          deadPoll = undefined;
          paused = false;
          proc.resume();
        }
      }, DEAD_POLL_MS);
    } else {
      clearInterval(deadPoll);
      deadPoll = undefined;
      proc.resume();
    }
  }

  function recomputeSize(): void {
    if (exited || removed) return;
    let c = Infinity;
    let r = Infinity;
    for (const a of attachments) {
      if (!a.size) continue;
      c = Math.min(c, a.size.cols);
      r = Math.min(r, a.size.rows);
    }
    if (c === Infinity || (c === cols && r === rows)) return;
    flush();
    cols = c;
    rows = r;
    proc.resize(cols, rows);
    screen.resize(cols, rows);
    fanout.event({ type: 'resize', cols, rows });
  }

  function scheduleGrace(): void {
    clearTimeout(graceTimer);
    graceTimer = setTimeout(() => {
      options.log('terminal.grace_expired', { terminal: options.id });
      kill();
    }, Math.min(limits.graceMs, MAX_TIMER_MS));
  }

  function remove(reason: string): void {
    if (removed) return;
    removed = true;
    clearTimeout(graceTimer);
    clearTimeout(killTimer);
    clearInterval(deadPoll);
    clearTimeout(inputRetry);
    pendingInput = [];
    pendingInputBytes = 0;
    for (const a of attachments) a.close(reason);
    attachments.clear();
    screen.dispose();
    options.onRemoved();
  }

  function kill(): void {
    if (removed) return;
    if (exited) return remove('the terminal was closed');
    killing = true;
    updatePause();
    try {
      proc.kill('SIGHUP');
    } catch {
      // already gone: onExit follows
    }
    killTimer = setTimeout(() => {
      try {
        proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }, limits.killTimeoutMs);
  }

  proc.onExit(({ exitCode, signal }) => {
    flush();
    const name = nameSignal(signal);
    exited = { code: name ? null : exitCode, signal: name };
    exitSeq = fanout.seq;
    fanout.event({ type: 'exit', ...exited });
    clearTimeout(killTimer);
    clearInterval(deadPoll);
    options.log('terminal.exited', { terminal: options.id, ...exited });
    if (killing) remove('the terminal was closed');
    else if (attachments.size === 0) scheduleGrace();
  });

  scheduleGrace();

  return {
    id: options.id,

    info(): TerminalInfo {
      let clients = 0;
      for (const a of attachments) clients += a.clients;
      return {
        id: options.id,
        command: [options.file, ...options.args].join(' '),
        cwd: options.cwdLabel,
        cols,
        rows,
        createdAt,
        clients,
        ...(exited ? { exited } : {}),
      };
    },

    attach(sink: FanoutSink, close: (reason: string) => void, size: { cols: number; rows: number } | null): Attachment {
      if (removed) throw new Error('terminal is gone');
      clearTimeout(graceTimer);
      const a: AttachmentState = { size, clients: 1, close };
      attachments.add(a);
      // Resize first, so this attachment's first snapshot already has its size.
      recomputeSize();
      const member = fanout.add(sink);
      a.member = member;
      let detached = false;
      return {
        input(data) {
          if (!exited && !removed) writeInput(data);
        },
        setSize(next) {
          a.size = next;
          recomputeSize();
        },
        setClients(count) {
          a.clients = count;
        },
        requestSnapshot(rid) {
          takeSnapshot().then(
            (snapshot) => fanout.reply(member, { ...snapshot, rid } as Snapshot),
            () => {},
          );
        },
        detach() {
          if (detached) return;
          detached = true;
          attachments.delete(a);
          fanout.remove(member);
          recomputeSize();
          if (attachments.size === 0 && !removed) {
            if (killing) return;
            scheduleGrace();
          }
        },
      };
    },

    kill,

    /** Agent shutdown: hang up without waiting for anyone. */
    hangUp(): void {
      try {
        proc.kill('SIGHUP');
      } catch {
        // already gone
      }
      remove('the workspace agent is stopping');
    },
  };
}
