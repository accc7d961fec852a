import { constants as osConstants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type ssh2 from 'ssh2';
import type { CommandInfo, DeployEventInput, FailedCommand } from './deploy-types.ts';

/**
 * Local execution (deprecated): the commands run one after another inside the workspace,
 * through the agent's SSH exec, stopping at the first failure.
 */
export type CommandStarter = (command: string, env: Record<string, string>) => Promise<ssh2.ClientChannel>;

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function exitCodeOf(code: number | null, signal: string | null | undefined): number {
  if (code !== null && code !== undefined) return code;
  const number = signal ? osConstants.signals[`SIG${signal.replace(/^SIG/, '')}` as keyof typeof osConstants.signals] : undefined;
  return number ? 128 + number : 1;
}

/** Splits a byte stream into whole lines (plus the last partial one at the end). */
export function createLineSplitter(onText: (text: string) => void) {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return {
    push(chunk: Buffer) {
      const text = partial + decoder.write(chunk);
      const cut = text.lastIndexOf('\n');
      if (cut < 0) {
        partial = text;
        return;
      }
      partial = text.slice(cut + 1);
      onText(text.slice(0, cut + 1));
    },
    end() {
      const text = partial + decoder.end();
      partial = '';
      if (text) onText(text);
    },
  };
}

export async function runCommandsLocally(options: {
  start: CommandStarter;
  commands: CommandInfo[];
  /** Folder (relative to the workspace root) the commands run in. */
  cwd: string;
  env: Record<string, string>;
  emit: (event: DeployEventInput) => void;
  signal: AbortSignal;
}): Promise<{ failed?: FailedCommand; cancelled?: boolean }> {
  for (const command of options.commands) {
    if (options.signal.aborted) return { cancelled: true };
    const script = options.cwd === '.' ? command.command : `cd ${shellQuote(options.cwd)} || exit 125\n${command.command}`;
    options.emit({ type: 'command-start', index: command.index, name: command.name, command: command.command });
    const started = Date.now();
    const channel = await options.start(script, options.env);
    const stdout = createLineSplitter((text) => options.emit({ type: 'output', index: command.index, stream: 'stdout', text }));
    const stderr = createLineSplitter((text) => options.emit({ type: 'output', index: command.index, stream: 'stderr', text }));
    const exitCode = await new Promise<number>((resolve) => {
      let code: number | null = null;
      let signal: string | null = null;
      const abort = () => channel.close();
      options.signal.addEventListener('abort', abort, { once: true });
      channel.on('data', (d: Buffer) => stdout.push(d));
      channel.stderr.on('data', (d: Buffer) => stderr.push(d));
      channel.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s ?? null;
      });
      channel.on('close', () => {
        options.signal.removeEventListener('abort', abort);
        stdout.end();
        stderr.end();
        resolve(exitCodeOf(code, signal));
      });
      channel.end();
    });
    options.emit({ type: 'command-end', index: command.index, exitCode, durationMs: Date.now() - started });
    if (options.signal.aborted) return { cancelled: true };
    if (exitCode !== 0) return { failed: { index: command.index, name: command.name, exitCode } };
  }
  return {};
}
