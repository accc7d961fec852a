import { StringDecoder } from 'node:string_decoder';
import type { CommandInfo, DeployEventInput, FailedCommand } from '../../common/index.ts';

/**
 * Turns what the runner prints (see runner.sh: lines prefixed with `@@<nonce> `) back into
 * per-command events. Input arrives in arbitrary chunks per source (a BuildKit vertex's stdout,
 * its stderr, the classic builder's stream), so partial lines are kept per source until their
 * newline arrives. Anything without the prefix is builder output and becomes a `log` event.
 */
export type RunnerTracker = {
  feed(source: string, data: Buffer | string): void;
  /** End of input: partial lines are taken as they are. */
  flush(): void;
  readonly started: number;
  readonly running: number | undefined;
  readonly failed: FailedCommand | undefined;
  readonly fatal: string | undefined;
  readonly allSucceeded: boolean;
};

export function createRunnerTracker(options: {
  nonce: string;
  commands: CommandInfo[];
  emit: (event: DeployEventInput) => void;
  now?: () => number;
}): RunnerTracker {
  const now = options.now ?? Date.now;
  const prefix = `@@${options.nonce} `;
  const partial = new Map<string, string>();
  const decoders = new Map<string, StringDecoder>();
  const startTimes = new Map<number, { arrived: number; uptime: number }>();
  /** Output of a command whose start line has not arrived yet (stdout and stderr race). */
  const early = new Map<number, Array<{ stream: 'stdout' | 'stderr'; text: string }>>();
  let running: number | undefined;
  let started = 0;
  let succeeded = 0;
  let failed: FailedCommand | undefined;
  let fatal: string | undefined;
  let pending: { index: number; stream: 'stdout' | 'stderr'; text: string } | undefined;
  let pendingLog = '';

  const flushPending = () => {
    if (pending) {
      if (startTimes.has(pending.index)) options.emit({ type: 'output', ...pending });
      else {
        const held = early.get(pending.index) ?? [];
        held.push({ stream: pending.stream, text: pending.text });
        early.set(pending.index, held);
      }
    }
    pending = undefined;
    if (pendingLog) options.emit({ type: 'log', text: pendingLog });
    pendingLog = '';
  };

  const commandOf = (index: number) => options.commands.find((c) => c.index === index);

  function line(text: string): void {
    if (!text.startsWith(prefix)) {
      if (pending) flushPending();
      pendingLog += `${text}\n`;
      return;
    }
    const rest = text.slice(prefix.length);
    const output = /^(\d+) ([oe]) ?/.exec(rest);
    if (output) {
      const index = Number(output[1]);
      const stream = output[2] === 'o' ? 'stdout' : 'stderr';
      const body = `${rest.slice(output[0].length)}\n`;
      if (pendingLog) flushPending();
      if (pending && (pending.index !== index || pending.stream !== stream)) flushPending();
      if (pending) pending.text += body;
      else pending = { index, stream, text: body };
      return;
    }
    flushPending();
    const [word, a, b, c] = rest.split(' ');
    if (word === 'start') {
      const index = Number(a);
      const command = commandOf(index);
      if (!command || startTimes.has(index)) return;
      running = index;
      started++;
      startTimes.set(index, { arrived: now(), uptime: Number(b) });
      options.emit({ type: 'command-start', index, name: command.name, command: command.command });
      for (const held of early.get(index) ?? []) options.emit({ type: 'output', index, ...held });
      early.delete(index);
    } else if (word === 'end') {
      const index = Number(a);
      const exitCode = Number(b);
      const command = commandOf(index);
      if (!command || !Number.isInteger(exitCode)) return;
      running = undefined;
      const start = startTimes.get(index);
      const measured = start && start.uptime > 0 && Number(c) >= start.uptime ? Math.round((Number(c) - start.uptime) * 1000) : undefined;
      options.emit({ type: 'command-end', index, exitCode, durationMs: measured ?? now() - (start?.arrived ?? now()) });
      if (exitCode === 0) succeeded++;
      else failed ??= { index, name: command.name, exitCode };
    } else if (word === 'fatal') {
      fatal = rest.slice('fatal '.length);
    }
  }

  return {
    feed(source, data) {
      let decoder = decoders.get(source);
      if (!decoder) decoders.set(source, (decoder = new StringDecoder('utf8')));
      // A chunk may end inside a multi-byte character; the decoder keeps it for the next one.
      const text = (partial.get(source) ?? '') + (typeof data === 'string' ? data : decoder.write(data));
      const lines = text.split('\n');
      const last = lines.pop() as string;
      if (last) partial.set(source, last);
      else partial.delete(source);
      for (const l of lines) line(l.endsWith('\r') ? l.slice(0, -1) : l);
      flushPending();
    },
    flush() {
      for (const [source, text] of partial) {
        partial.delete(source);
        line(text);
      }
      flushPending();
      for (const [index, held] of early) for (const h of held) options.emit({ type: 'output', index, ...h });
      early.clear();
    },
    get started() {
      return started;
    },
    get running() {
      return running;
    },
    get failed() {
      return failed;
    },
    get fatal() {
      return fatal;
    },
    get allSucceeded() {
      return succeeded === options.commands.length && !failed;
    },
  };
}
