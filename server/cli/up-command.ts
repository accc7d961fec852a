import { chmod, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { toProcessEnv } from '../hybrid/index.ts';
import { readDevSection } from './dev-manifest.ts';
import { runHybridSession } from './hybrid-session.ts';
import { describeProcess, formatEnvFile, resolveServiceEnvironment } from './service-env.ts';
import type { CliCommand } from './types.ts';

export const upCommand: CliCommand = {
  name: ['up'],
  summary: 'run a dev service of the manifest on this machine, bridged into a workspace (hybrid mode)',
  usage: 'up <name> [--workspace <id>] [--file <manifest>] [--write-env-file <path>]',
  description: `
Reads dev.<name> (mode: hybrid) from okteto.yml in this folder. Its forward rules listen on this
machine and reach the workspace; its reverse rules listen in the workspace and reach this
machine; its command runs here, in its workdir, until it exits or you press Ctrl-C. A lost
connection is made again, rules and all, and the command keeps running.

The command gets the service's environment in the workspace (see "wharf env <name>"), the
manifest's environment over it, and PATH, HOME, TERM and USER of this machine over both.
--write-env-file also writes that environment to a file (mode 0600) for an IDE's run configuration.
(Not --env-file: Node takes any argument starting with --env-file as its own option, even
after the script's name, so the helper would never see it.)`,
  options: {
    workspace: { type: 'string', short: 'w', valueName: '<id>', description: 'the workspace to bridge into (default: the manifest\'s name)' },
    file: { type: 'string', short: 'f', valueName: '<manifest>', description: 'the manifest (default: okteto.yml or okteto.yaml here)' },
    // Not `--env-file`: Node reads every argument starting with --env-file as its own option,
    // wherever it stands (nodejs/node#54232), and exits when the file does not exist yet.
    'write-env-file': { type: 'string', valueName: '<path>', description: 'also write the environment to this file (dotenv; PATH, HOME, TERM and USER left out)' },
  },
  async run(ctx, args) {
    const [name, ...extra] = args.positionals;
    if (!name || extra.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf up <name> [--workspace <id>] [--file <manifest>] [--write-env-file <path>]' });
    const found = await readDevSection(ctx, typeof args.values.file === 'string' ? args.values.file : undefined, name, { command: 'up', hybridOnly: true });
    if (!found.ok) return ctx.fail({ code: 'local', message: found.message });
    const { dev } = found;
    for (const notice of dev.notices) ctx.io.stderr.write(`wharf up: ${notice}\n`);
    const workspaceId = typeof args.values.workspace === 'string' ? args.values.workspace : found.manifestName;
    if (!workspaceId) return ctx.fail({ code: 'usage', message: `${found.file} has no name: say which workspace with --workspace <id>` });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);

    // Resolved once, before the command starts: it keeps this environment across reconnects.
    const environment = await resolveServiceEnvironment(api.value, { workspaceId, dev, localEnvironment: ctx.config.environment, includeSecrets: true });
    if (!environment.ok) return ctx.fail({ ...environment.error, message: `cannot read the environment of dev.${name} in workspace "${workspaceId}": ${environment.error.message}` });
    ctx.io.stderr.write(`wharf up: ${name}: ${environment.value.variables.length} variables; ${describeProcess(environment.value)}\n`);
    for (const note of environment.value.notes) ctx.io.stderr.write(`wharf up: ${name}: ${note}\n`);
    if (typeof args.values['write-env-file'] === 'string') {
      const path = resolve(ctx.config.cwd, args.values['write-env-file']);
      // chmod as well: an existing file keeps its mode through writeFile, and this one holds secrets.
      const written = await writeFile(path, formatEnvFile(environment.value, workspaceId), { mode: 0o600 })
        .then(() => chmod(path, 0o600))
        .catch((err: Error) => err);
      if (written instanceof Error) return ctx.fail({ code: 'local', message: `cannot write the env file ${path}: ${written.message}` });
      ctx.io.stderr.write(`wharf up: ${name}: wrote the environment to ${path}\n`);
    }

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
        command: dev.command.length > 0 ? { argv: dev.command, cwd: dev.workdir, env: toProcessEnv(environment.value.variables) } : undefined,
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
