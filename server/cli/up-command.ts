import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseManifest, MANIFEST_NAMES, type DevSection } from '../okteto/index.ts';
import { runHybridSession } from './hybrid-session.ts';
import type { CliCommand, CliContext } from './types.ts';

/** The manifest's `dev.<name>`, or a failure message naming what went wrong. */
async function readDevSection(ctx: CliContext, file: string | undefined, name: string): Promise<{ ok: true; dev: DevSection; file: string; manifestName?: string } | { ok: false; message: string }> {
  const cwd = ctx.config.cwd;
  const path = file ? join(cwd, file) : MANIFEST_NAMES.map((n) => join(cwd, n)).find((p) => existsSync(p));
  if (!path) return { ok: false, message: `there is no okteto.yml (or okteto.yaml) in ${cwd}; run wharf up from the folder that holds it, or pass --file <manifest>` };
  const text = await readFile(path, 'utf8').catch((err: Error) => err);
  if (text instanceof Error) return { ok: false, message: `cannot read ${path}: ${text.message}` };
  const parsed = parseManifest(text, path);
  if (!parsed.ok) return { ok: false, message: parsed.error.message };
  const dev = parsed.value.manifest.dev ?? {};
  const section = dev[name];
  if (!section) {
    const names = Object.keys(dev);
    return { ok: false, message: `${path}: there is no dev.${name}${names.length ? `; the manifest has ${names.map((n) => `"${n}"`).join(', ')}` : '; the manifest has no dev section'}` };
  }
  if (section.mode !== 'hybrid') return { ok: false, message: `${section.where}: dev.${name} has mode "${section.mode}"; wharf up runs mode: hybrid only` };
  return { ok: true, dev: section, file: path, manifestName: parsed.value.manifest.name };
}

/** What the local command starts with: the developer's PATH, HOME, TERM and USER, the manifest's `environment` under them. */
function localEnvironment(ctx: CliContext, dev: DevSection): Record<string, string> {
  const env: Record<string, string> = { ...dev.environment };
  for (const name of ['PATH', 'HOME', 'TERM', 'USER']) {
    const value = ctx.config.environment[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export const upCommand: CliCommand = {
  name: ['up'],
  summary: 'run a dev service of the manifest on this machine, bridged into a workspace (hybrid mode)',
  usage: 'up <name> [--workspace <id>] [--file <manifest>]',
  description: `
Reads dev.<name> (mode: hybrid) from okteto.yml in this folder. Its forward rules listen on this
machine and reach the workspace; its reverse rules listen in the workspace and reach this
machine; its command runs here, in its workdir, until it exits or you press Ctrl-C. A lost
connection is made again, rules and all, and the command keeps running.`,
  options: {
    workspace: { type: 'string', short: 'w', valueName: '<id>', description: 'the workspace to bridge into (default: the manifest\'s name)' },
    file: { type: 'string', short: 'f', valueName: '<manifest>', description: 'the manifest (default: okteto.yml or okteto.yaml here)' },
  },
  async run(ctx, args) {
    const [name, ...extra] = args.positionals;
    if (!name || extra.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf up <name> [--workspace <id>] [--file <manifest>]' });
    const found = await readDevSection(ctx, typeof args.values.file === 'string' ? args.values.file : undefined, name);
    if (!found.ok) return ctx.fail({ code: 'local', message: found.message });
    const { dev } = found;
    for (const notice of dev.notices) ctx.io.stderr.write(`wharf up: ${notice}\n`);
    const workspaceId = typeof args.values.workspace === 'string' ? args.values.workspace : found.manifestName;
    if (!workspaceId) return ctx.fail({ code: 'usage', message: `${found.file} has no name: say which workspace with --workspace <id>` });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);

    const aborted = new AbortController();
    const stop = () => aborted.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      return await runHybridSession({
        api: api.value,
        workspaceId,
        name,
        rules: dev.rules,
        interface: dev.interface,
        command: dev.command.length > 0 ? { argv: dev.command, cwd: dev.workdir, env: localEnvironment(ctx, dev) } : undefined,
        report: (line) => ctx.io.stderr.write(`wharf up: ${line}\n`),
        timing: ctx.config.limits.hybrid,
        signal: aborted.signal,
      });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
