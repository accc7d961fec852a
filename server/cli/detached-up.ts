import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MANIFEST_NAMES, parseManifest } from '../okteto/index.ts';
import type { CliArgs, CliCommand, CliContext } from './types.ts';

/**
 * `wharf up --detach`: the same session in a background process of its own (its own session and
 * process group, so closing the terminal does not end it), writing to a log file, with a small
 * state file beside it that `wharf down` reads. Both live in the CLI's state dir
 * (`$XDG_STATE_HOME/wharf`, else `~/.local/state/wharf`), named after the workspace and the dev
 * entry: `up-<workspace>-<name>.log` and `.json`.
 */

export type DetachedSession = {
  name: string;
  workspace: string;
  pid: number;
  log: string;
  cwd: string;
  startedAt: string;
};

/** How long `--detach` waits for the first connection before leaving the session to itself. */
const READY_WAIT_MS = 30_000;
const POLL_MS = 100;

const fileBase = (workspace: string, name: string) => `up-${encodeURIComponent(workspace)}-${encodeURIComponent(name)}`;

export function sessionFiles(stateDir: string, workspace: string, name: string): { state: string; log: string } {
  const base = join(stateDir, fileBase(workspace, name));
  return { state: `${base}.json`, log: `${base}.log` };
}

/** Every session recorded in the state dir (running or not), with its state file. */
export async function listSessions(stateDir: string): Promise<Array<DetachedSession & { file: string }>> {
  const names = await readdir(stateDir).catch(() => [] as string[]);
  const found: Array<DetachedSession & { file: string }> = [];
  for (const name of names) {
    if (!name.startsWith('up-') || !name.endsWith('.json')) continue;
    const file = join(stateDir, name);
    try {
      const session = JSON.parse(await readFile(file, 'utf8')) as DetachedSession;
      if (typeof session.pid === 'number' && typeof session.name === 'string') found.push({ ...session, file });
    } catch {
      // half written or not ours: ignore
    }
  }
  return found;
}

/** The command line of `pid`, or undefined when it is gone (or a zombie, whose command line is empty). */
async function commandLineOf(pid: number): Promise<string[] | undefined> {
  const proc = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (proc !== undefined) return proc ? proc.split('\0').filter(Boolean) : undefined;
  // No /proc (macOS): ask ps, which both have.
  const ps = await promisify(execFile)('ps', ['-o', 'command=', '-p', String(pid)]).catch(() => undefined);
  const line = ps?.stdout.trim();
  return line ? line.split(/\s+/) : undefined;
}

/**
 * Whether the recorded process still runs and is that session (not another program that has
 * since been given the same pid): its command line must be `… up <name> …`.
 */
export async function isSessionRunning(session: DetachedSession): Promise<boolean> {
  try {
    process.kill(session.pid, 0);
  } catch {
    return false;
  }
  const argv = await commandLineOf(session.pid);
  if (!argv) return false;
  const up = argv.indexOf('up');
  return up >= 0 && argv.slice(up + 1).includes(session.name);
}

/** The workspace a `wharf up` command line is for: `--workspace`, else the manifest's `name`. */
async function workspaceOf(ctx: CliContext, args: CliArgs): Promise<string | undefined> {
  if (typeof args.values.workspace === 'string') return args.values.workspace;
  const given = typeof args.values.file === 'string' ? join(ctx.config.cwd, args.values.file) : undefined;
  for (const path of given ? [given] : MANIFEST_NAMES.map((n) => join(ctx.config.cwd, n))) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const parsed = parseManifest(text, path);
    return parsed.ok ? parsed.value.manifest.name : undefined;
  }
  return undefined;
}

/** The command line again, from what was parsed, without `--detach`. */
function argvWithoutDetach(command: CliCommand, args: CliArgs): string[] {
  const argv = [...command.name, ...args.positionals];
  for (const [option, value] of Object.entries(args.values)) {
    if (option === 'detach' || value === undefined || value === false) continue;
    for (const one of Array.isArray(value) ? value : [value]) argv.push(one === true ? `--${option}` : `--${option}=${one}`);
  }
  return args.rest.length ? [...argv, '--', ...args.rest] : argv;
}

async function readFrom(file: string, offset: number): Promise<string> {
  const text = await readFile(file).catch(() => Buffer.alloc(0));
  return text.subarray(offset).toString('utf8');
}

async function detach(ctx: CliContext, args: CliArgs, up: CliCommand): Promise<number> {
  const [name] = args.positionals;
  const workspace = await workspaceOf(ctx, args);
  // Without a name or a workspace there is nothing to run: the command says why, at once.
  if (!name || args.positionals.length !== 1 || !workspace) return up.run(ctx, args);
  const files = sessionFiles(ctx.config.stateDir, workspace, name);
  const earlier = (await listSessions(ctx.config.stateDir)).find((s) => s.file === files.state);
  if (earlier && (await isSessionRunning(earlier))) {
    return ctx.fail({
      code: 'conflict',
      message: `wharf up ${name} for workspace "${workspace}" already runs in the background (pid ${earlier.pid}; log ${earlier.log}); "wharf down ${name}" stops it`,
    });
  }
  await mkdir(ctx.config.stateDir, { recursive: true, mode: 0o700 });
  await appendFile(files.log, `--- wharf up ${name} for workspace "${workspace}", started ${new Date().toISOString()} from ${ctx.config.cwd}\n`, { mode: 0o600 });
  const offset = (await stat(files.log).catch(() => undefined))?.size ?? 0;
  const log = openSync(files.log, 'a');
  const { self } = ctx.config;
  const child = spawn(self.command, [...self.args, ...argvWithoutDetach(up, args)], {
    cwd: ctx.config.cwd,
    env: ctx.config.environment,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  if (!child.pid) return ctx.fail({ code: 'local', message: `could not start wharf up in the background: ${(await readFrom(files.log, offset)).trim()}` });
  const session: DetachedSession = { name, workspace, pid: child.pid, log: files.log, cwd: ctx.config.cwd, startedAt: new Date().toISOString() };
  await writeFile(files.state, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });

  // Wait for the first connection (or the end), so a mistake is reported here and not only in the log.
  let code: number | undefined;
  void exited.then((c) => (code = c));
  const deadline = Date.now() + READY_WAIT_MS;
  let said = '';
  while (code === undefined && Date.now() < deadline) {
    said = await readFrom(files.log, offset);
    if (/: connected to workspace /.test(said)) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  said = await readFrom(files.log, offset);
  ctx.io.stderr.write(said);
  if (code !== undefined) {
    await rm(files.state, { force: true });
    ctx.io.stderr.write(`wharf up: ${name} ended at once (exit ${code}); its log: ${files.log}\n`);
    return code || 1;
  }
  child.unref();
  const connected = /: connected to workspace /.test(said);
  ctx.io.stdout.write(
    [
      `wharf up: ${name} runs in the background${connected ? '' : ' (still connecting)'}, pid ${child.pid}`,
      `  log: ${files.log}`,
      `  stop it with: wharf down ${name}${args.values.workspace ? ` --workspace ${workspace}` : ''}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** `command` (wharf up) with `--detach` added: the same session, in the background. */
export function withDetach(command: CliCommand): CliCommand {
  return {
    ...command,
    usage: `${command.usage} [--detach]`,
    description: `${command.description ?? ''}

With --detach it runs in the background instead: its output goes to a log file under
~/.local/state/wharf (printed, with the pid, once it has connected), and "wharf down <name>"
stops it and its local command.`,
    options: {
      ...command.options,
      detach: { type: 'boolean', short: 'd', description: 'run in the background, with a log file; "wharf down <name>" stops it' },
    },
    run(ctx, args) {
      if (args.values.detach === true) return detach(ctx, args, command);
      const { detach: _detach, ...values } = args.values;
      return command.run(ctx, { ...args, values });
    },
  };
}
