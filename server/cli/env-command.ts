import { readDevSection } from './dev-manifest.ts';
import { describeProcess, formatVariables, resolveServiceEnvironment } from './service-env.ts';
import type { CliCommand } from './types.ts';
import { formatTable } from './workspaces-command.ts';

export const envCommand: CliCommand = {
  name: ['env'],
  summary: 'print the environment wharf up gives a dev service, and the layer each value came from',
  usage: 'env <name> [--workspace <id>] [--file <manifest>] [--json] [--show-secrets]',
  description: `
Resolves the environment of dev.<name> as "wharf up <name>" would start its command: the
workspace's layers (the service's process there, the workspace's variables, config sets, secret
sets, the base environment), the manifest's environment over them, and PATH, HOME, TERM and
USER of this machine over everything. Secret values are shown as •••• unless --show-secrets.`,
  options: {
    workspace: { type: 'string', short: 'w', valueName: '<id>', description: 'the workspace (default: the manifest\'s name)' },
    file: { type: 'string', short: 'f', valueName: '<manifest>', description: 'the manifest (default: okteto.yml or okteto.yaml here)' },
    json: { type: 'boolean', description: 'print {service, process, variables: [{name, value, source, secret}], notes} as JSON (a masked secret\'s value is null)' },
    'show-secrets': { type: 'boolean', description: 'print secret values too' },
  },
  async run(ctx, args) {
    const [name, ...extra] = args.positionals;
    if (!name || extra.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf env <name> [--workspace <id>] [--file <manifest>] [--json] [--show-secrets]' });
    const found = await readDevSection(ctx, typeof args.values.file === 'string' ? args.values.file : undefined, name, { command: 'env', hybridOnly: false });
    if (!found.ok) return ctx.fail({ code: 'local', message: found.message });
    const workspaceId = typeof args.values.workspace === 'string' ? args.values.workspace : found.manifestName;
    if (!workspaceId) return ctx.fail({ code: 'usage', message: `${found.file} has no name: say which workspace with --workspace <id>` });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const showSecrets = args.values['show-secrets'] === true;
    const resolved = await resolveServiceEnvironment(api.value, { workspaceId, dev: found.dev, localEnvironment: ctx.config.environment, includeSecrets: showSecrets });
    if (!resolved.ok) return ctx.fail(resolved.error);
    if (args.values.json) {
      ctx.io.stdout.write(`${JSON.stringify({ workspace: workspaceId, ...resolved.value }, null, 2)}\n`);
      return 0;
    }
    ctx.io.stderr.write(`${describeProcess(resolved.value)}\n`);
    for (const note of resolved.value.notes) ctx.io.stderr.write(`note: ${note}\n`);
    ctx.io.stdout.write(formatTable(['NAME', 'SOURCE', 'VALUE'], formatVariables(resolved.value.variables, showSecrets)));
    return 0;
  },
};
