import { createLineSplitter, type CommandInfo, type DeployEventInput, type FailedCommand } from '../../common/index.ts';

/**
 * Local execution (deprecated): the commands run one after another inside the workspace,
 * through the agent, stopping at the first failure.
 */
export type CommandRunner = (
  input: { command: string; cwd: string; env: Record<string, string> },
  onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
  signal: AbortSignal,
) => Promise<number>;

export async function runCommandsLocally(options: {
  run: CommandRunner;
  commands: CommandInfo[];
  /** Folder (relative to the workspace root) the commands run in. */
  cwd: string;
  env: Record<string, string>;
  emit: (event: DeployEventInput) => void;
  signal: AbortSignal;
}): Promise<{ failed?: FailedCommand; cancelled?: boolean }> {
  for (const command of options.commands) {
    if (options.signal.aborted) return { cancelled: true };
    options.emit({ type: 'command-start', index: command.index, name: command.name, command: command.command });
    const started = Date.now();
    const stdout = createLineSplitter((text) => options.emit({ type: 'output', index: command.index, stream: 'stdout', text }));
    const stderr = createLineSplitter((text) => options.emit({ type: 'output', index: command.index, stream: 'stderr', text }));
    const exitCode = await options.run(
      { command: command.command, cwd: options.cwd, env: options.env },
      (stream, chunk) => (stream === 'stdout' ? stdout : stderr).push(chunk),
      options.signal,
    );
    stdout.end();
    stderr.end();
    // A command killed by the cancel did not fail of its own: it ends with the run, as "cancelled"
    // (as a remote one does), rather than as a failure with the kill's exit code.
    if (options.signal.aborted && exitCode !== 0) return { cancelled: true };
    options.emit({ type: 'command-end', index: command.index, exitCode, durationMs: Date.now() - started });
    if (options.signal.aborted) return { cancelled: true };
    if (exitCode !== 0) return { failed: { index: command.index, name: command.name, exitCode } };
  }
  return {};
}
