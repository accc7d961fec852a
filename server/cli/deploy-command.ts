import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { createLineSplitter, type DeployEvent, type DeployKind } from '../common/index.ts';
import {
  CONTEXT_PREFIX,
  createIgnoreMatcher,
  decideMode,
  DEFAULT_PACK_LIMITS,
  encodeUploadHeader,
  MANIFEST_NAMES,
  mergeVariables,
  packContext,
  parseIgnoreFile,
  parseManifest,
  parseVariableAssignments,
  patternsFor,
  resolveInside,
  UPLOAD_CONTENT_TYPE,
  validateRelativePath,
  type ManifestSection,
} from '../okteto/index.ts';
import type { CliCommand, CliContext, CliArgs } from './types.ts';

const CONTEXT_HINT_BYTES = 50 * 1024 * 1024;

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function megabytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

type Manifest = { file: string; path: string; text: string; section: ManifestSection; warnings: string[] };

async function readManifest(ctx: CliContext, kind: DeployKind, fileOption: string | undefined): Promise<Manifest | string> {
  const cwd = ctx.config.cwd;
  let file: string;
  if (fileOption) {
    const checked = validateRelativePath(fileOption, '--file');
    if (!checked.ok) return checked.error;
    file = checked.value;
    if (!existsSync(join(cwd, file))) return `the manifest ${file} does not exist in ${cwd}`;
  } else {
    const found = MANIFEST_NAMES.find((name) => existsSync(join(cwd, name)));
    if (!found) return `there is no okteto.yml (or okteto.yaml) in ${cwd}; pass --file <manifest>`;
    file = found;
  }
  const path = join(cwd, file);
  const text = await readFile(path, 'utf8').catch((err: Error) => err);
  if (text instanceof Error) return `cannot read ${file}: ${text.message}`;
  const parsed = parseManifest(text, file);
  if (!parsed.ok) return parsed.error.message;
  const section = parsed.value.manifest[kind];
  if (!section) return `${file} has no "${kind}" section: there is nothing to ${kind}`;
  return { file, path, text, section, warnings: parsed.value.warnings };
}

/** Local execution on this machine (deprecated), one command after the other. */
async function runLocally(ctx: CliContext, manifest: Manifest, env: Record<string, string>): Promise<number> {
  const { stdout, stderr } = ctx.io;
  stderr.write('wharf: warning: local execution is deprecated: the commands run on this machine. Use --remote (or "remote: true" in the manifest) to run them in a clean runner.\n');
  const commands = manifest.section.commands;
  const shell = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
  for (let i = 0; i < commands.length; i++) {
    const command = commands[i];
    stdout.write(`▶ [${i + 1}/${commands.length}] ${command.name}\n`);
    const started = Date.now();
    const code = await new Promise<number>((resolve) => {
      const child = spawn(shell, ['-c', command.command], { cwd: dirname(manifest.path), env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.pipe(stdout, { end: false });
      child.stderr.pipe(stderr, { end: false });
      child.on('error', (err) => {
        stderr.write(`wharf: cannot start ${shell}: ${err.message}\n`);
        resolve(127);
      });
      child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + 15 : 1)));
    });
    const took = seconds(Date.now() - started);
    if (code !== 0) {
      stderr.write(`✘ [${i + 1}/${commands.length}] ${command.name} failed with exit code ${code} (${took})\n`);
      return code;
    }
    stdout.write(`✔ [${i + 1}/${commands.length}] ${command.name} (${took})\n`);
  }
  stdout.write(`${commands.length} command${commands.length === 1 ? '' : 's'} succeeded\n`);
  return 0;
}

/** Prints the server's events as they come; returns the exit code the run deserves. */
function createEventPrinter(ctx: CliContext) {
  const { stdout, stderr } = ctx.io;
  let total = 0;
  let exitCode = 1;
  const names = new Map<number, string>();
  return {
    get exitCode() {
      return exitCode;
    },
    print(event: DeployEvent) {
      switch (event.type) {
        case 'plan':
          total = event.commands.length;
          for (const c of event.commands) names.set(c.index, c.name);
          stdout.write(`Running ${total} command${total === 1 ? '' : 's'} remotely in ${event.image ?? 'the runner'}\n`);
          break;
        case 'phase':
          if (event.phase !== 'running') stderr.write(`  ${event.message}\n`);
          break;
        case 'warning':
          stderr.write(`wharf: warning: ${event.message}\n`);
          break;
        case 'log':
          break;
        case 'context':
          break;
        case 'command-start':
          stdout.write(`▶ [${event.index}/${total}] ${event.name}\n`);
          break;
        case 'output':
          (event.stream === 'stderr' ? stderr : stdout).write(event.text);
          break;
        case 'command-end':
          if (event.exitCode === 0) stdout.write(`✔ [${event.index}/${total}] ${names.get(event.index)} (${seconds(event.durationMs)})\n`);
          else stderr.write(`✘ [${event.index}/${total}] ${names.get(event.index)} failed with exit code ${event.exitCode} (${seconds(event.durationMs)})\n`);
          break;
        case 'done':
          if (event.status === 'succeeded') {
            stdout.write(`${total} command${total === 1 ? '' : 's'} succeeded in ${seconds(event.durationMs)}\n`);
            exitCode = 0;
          } else if (event.status === 'failed' && event.failedCommand) {
            stderr.write(`wharf: ${event.message ?? 'a command failed'}\n`);
            exitCode = event.failedCommand.exitCode || 1;
          } else {
            stderr.write(`wharf: ${event.message ?? 'the run failed'}\n`);
            exitCode = 1;
          }
          break;
      }
    },
  };
}

async function runRemotely(ctx: CliContext, kind: DeployKind, manifest: Manifest, options: { remote: boolean | undefined; variables: Record<string, string> }): Promise<number> {
  const { stderr } = ctx.io;
  // A cloned repository is not trusted: its `context` must not reach (by "..", an absolute path
  // or a symlink) outside the project folder, or the upload would carry the developer's files.
  const projectDir = dirname(manifest.path);
  const inside = await resolveInside(projectDir, manifest.section.context ?? '.', `${kind}.context`);
  if (!inside.ok) return ctx.fail({ code: 'local', message: `${manifest.file}: ${inside.error}; the ${kind} context must be a folder inside the project folder` });
  const contextDir = inside.value;
  if (!existsSync(contextDir)) return ctx.fail({ code: 'local', message: `the ${kind} context ${contextDir} does not exist` });
  const ignorePath = join(contextDir, '.oktetoignore');
  const ignoreText = existsSync(ignorePath) ? await readFile(ignorePath, 'utf8') : '';
  const ignore = parseIgnoreFile(ignoreText, relative(ctx.config.cwd, ignorePath) || '.oktetoignore');
  if (!ignore.ok) return ctx.fail({ code: 'local', message: ignore.error.message });
  for (const warning of ignore.value.warnings) stderr.write(`wharf: warning: ${warning}\n`);
  const matcher = createIgnoreMatcher(patternsFor(ignore.value, kind));
  const manifestInContext = relative(contextDir, await realpath(manifest.path)).split('\\').join('/');
  if (!manifestInContext.startsWith('..') && matcher.excludes(manifestInContext)) {
    return ctx.fail({ code: 'local', message: `${manifest.file} is excluded by .oktetoignore: the ${kind} context must contain its manifest (remove the rule, or add "!${manifestInContext}")` });
  }
  const api = await ctx.api();
  if (!api.ok) return ctx.fail(api.error);

  stderr.write(`  packing ${contextDir}\n`);
  const packed = packContext({ root: contextDir, matcher, prefix: CONTEXT_PREFIX, ...DEFAULT_PACK_LIMITS });
  packed.summary.then(
    (s) => {
      stderr.write(`  context: ${megabytes(s.bytes)}, ${s.files} file${s.files === 1 ? '' : 's'}\n`);
      if (s.bytes > CONTEXT_HINT_BYTES) stderr.write(`wharf: hint: the context is over 50 MB; list what the ${kind} does not need (node_modules, build output, .git...) in .oktetoignore\n`);
      if (s.skipped.length) stderr.write(`wharf: warning: left out special files (sockets, fifos, devices): ${s.skipped.join(', ')}\n`);
    },
    () => {},
  );
  const header = encodeUploadHeader({ remote: options.remote, variables: options.variables, file: manifest.file, manifest: manifest.text });
  async function* body() {
    yield header;
    for await (const chunk of packed.stream) yield chunk as Buffer;
  }
  // Each block goes back to the packer once it has left (it is ignored for the header).
  const response = await api.value.upload(`/api/deploys?kind=${kind}`, { headers: { 'content-type': UPLOAD_CONTENT_TYPE }, chunks: body(), sent: packed.recycle });
  if (!response.ok) {
    const packError = await packed.summary.then(() => undefined, (err: Error) => err.message);
    return ctx.fail(packError ? { code: 'local', message: `packing ${contextDir} failed: ${packError}` } : response.error);
  }
  const printer = createEventPrinter(ctx);
  let sawDone = false;
  const lines = createLineSplitter((text) => {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const event = JSON.parse(line) as DeployEvent;
        if (event.type === 'done') sawDone = true;
        printer.print(event);
      } catch {
        stderr.write(`wharf: unreadable event from the server: ${line.slice(0, 200)}\n`);
      }
    }
  });
  try {
    for await (const chunk of response.value) lines.push(chunk as Buffer);
  } catch (err) {
    return ctx.fail({ code: 'unreachable', message: `lost the connection to the server during the ${kind}: ${(err as Error).message}` });
  }
  lines.end();
  if (!sawDone) return ctx.fail({ code: 'server', message: `the server stopped sending events before the ${kind} ended` });
  return printer.exitCode;
}

function commandFor(kind: DeployKind): CliCommand {
  const usage = `${kind} [--remote | --remote=false] [--var NAME=value]... [--file okteto.yml]`;
  return {
    name: [kind],
    summary: kind === 'deploy' ? 'run the deploy commands of okteto.yml (remotely, in a BuildKit runner)' : 'run the destroy commands of okteto.yml',
    usage,
    description: [
      `Reads the ${kind} commands of the Okteto manifest in the current folder and runs them.`,
      'Remote execution packs this folder (filtered by .oktetoignore), uploads it to the wharf server',
      'and runs the commands in a fresh runner there, printing each command\'s output as it runs.',
      'It is used when --remote is given, the manifest says "remote: true" or names an "image", or',
      'OKTETO_FORCE_REMOTE is true here or on the server; --remote=false turns it off (the commands',
      'then run on this machine, which is deprecated).',
      'The exit code is the failed command\'s exit code, 1 for other failures, 0 on success.',
    ].join('\n'),
    options: {
      remote: { type: 'boolean', description: 'run remotely (--remote=false: run on this machine)' },
      var: { type: 'string', multiple: true, valueName: 'NAME=value', description: 'a variable for the commands' },
      file: { type: 'string', short: 'f', valueName: '<manifest>', description: 'the manifest (default: okteto.yml, then okteto.yaml)' },
    },
    async run(ctx: CliContext, args: CliArgs) {
      if (args.positionals.length > 0) return ctx.fail({ code: 'usage', message: `usage: wharf ${usage}` });
      const variables = parseVariableAssignments((args.values.var as string[] | undefined) ?? []);
      if (!variables.ok) return ctx.fail({ code: 'usage', message: `--var: ${variables.error}` });
      const manifest = await readManifest(ctx, kind, args.values.file as string | undefined);
      if (typeof manifest === 'string') return ctx.fail({ code: 'local', message: manifest });
      for (const warning of manifest.warnings) ctx.io.stderr.write(`wharf: warning: ${warning}\n`);
      const remote = args.values.remote as boolean | undefined;
      const api = await ctx.api();
      if (!api.ok) return ctx.fail(api.error);
      const settings = await api.value.json<{ forceRemote: boolean; adminVariables: Record<string, string> }>('GET', '/api/deploy-settings');
      if (!settings.ok) return ctx.fail(settings.error);
      const force = ctx.config.environment.OKTETO_FORCE_REMOTE;
      const callerVariables = { ...(force !== undefined ? { OKTETO_FORCE_REMOTE: force } : {}), ...variables.value };
      const decision = decideMode({ section: manifest.section, remoteFlag: remote, callerVariables, adminVariables: settings.value.adminVariables });
      if (decision.mode === 'local') {
        return runLocally(ctx, manifest, { ...ctx.config.environment, ...mergeVariables(settings.value.adminVariables, variables.value) });
      }
      return runRemotely(ctx, kind, manifest, { remote, variables: callerVariables });
    },
  };
}

export const deployCommand: CliCommand = commandFor('deploy');
export const destroyCommand: CliCommand = commandFor('destroy');
