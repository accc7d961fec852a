import type { ConfigSetInfo, SecretSetInfo } from '../common/index.ts';
import { checkSetName, checkVariableName } from '../hybrid/index.ts';
import type { CliCommand, CliContext, CliFailure } from './types.ts';
import { formatTable } from './workspaces-command.ts';

/**
 * The workspace's own environment settings of hybrid mode (docs/hybrid.md): its variables (a
 * container spec's `env`), config sets (configmaps) and secret sets (secrets, write-only).
 */

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}`;

/** `NAME=value`, or `NAME` alone for the value of NAME in this shell (keeps a secret out of the command line). */
function parseAssignments(ctx: CliContext, items: string[]): { ok: true; value: Record<string, string> } | { ok: false; error: CliFailure } {
  const variables: Record<string, string> = {};
  for (const item of items) {
    const at = item.indexOf('=');
    const name = at < 0 ? item : item.slice(0, at);
    const problem = checkVariableName(name);
    if (problem) return { ok: false, error: { code: 'usage', message: `${problem} (expected NAME=value, or NAME for its value in your environment)` } };
    const value = at < 0 ? ctx.config.environment[name] : item.slice(at + 1);
    if (value === undefined) return { ok: false, error: { code: 'usage', message: `${name} is not set in your environment: give it as ${name}=value, or export it first` } };
    variables[name] = value;
  }
  return { ok: true, value: variables };
}

function checkSet(name: string | undefined): CliFailure | undefined {
  if (!name) return { code: 'usage', message: 'name the set' };
  const problem = checkSetName(name);
  return problem ? { code: 'usage', message: problem } : undefined;
}

export const workspaceEnvCommand: CliCommand = {
  name: ['workspace', 'env'],
  summary: 'list the workspace\'s own variables (the "spec" layer of wharf env)',
  usage: 'workspace env <workspace> [--json]',
  options: { json: { type: 'boolean', description: 'print {"variables": {...}} as JSON' } },
  async run(ctx, args) {
    const [workspace, ...extra] = args.positionals;
    if (!workspace || extra.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf workspace env <workspace> [--json]' });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const answer = await api.value.json<{ variables: Record<string, string> }>('GET', `${base(workspace)}/env`);
    if (!answer.ok) return ctx.fail(answer.error);
    if (args.values.json) ctx.io.stdout.write(`${JSON.stringify(answer.value, null, 2)}\n`);
    else for (const [name, value] of Object.entries(answer.value.variables).sort()) ctx.io.stdout.write(`${name}=${value}\n`);
    return 0;
  },
};

export const workspaceEnvSetCommand: CliCommand = {
  name: ['workspace', 'env', 'set'],
  summary: 'set variables of the workspace (NAME=value; NAME alone takes your environment\'s value)',
  usage: 'workspace env set <workspace> NAME=value|NAME...',
  async run(ctx, args) {
    const [workspace, ...items] = args.positionals;
    if (!workspace || items.length === 0) return ctx.fail({ code: 'usage', message: 'usage: wharf workspace env set <workspace> NAME=value|NAME...' });
    const variables = parseAssignments(ctx, items);
    if (!variables.ok) return ctx.fail(variables.error);
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const answer = await api.value.json('PATCH', `${base(workspace)}/env`, { json: { variables: variables.value } });
    if (!answer.ok) return ctx.fail(answer.error);
    ctx.io.stderr.write(`set ${Object.keys(variables.value).join(', ')} in workspace "${workspace}"\n`);
    return 0;
  },
};

export const workspaceEnvUnsetCommand: CliCommand = {
  name: ['workspace', 'env', 'unset'],
  summary: 'remove variables of the workspace',
  usage: 'workspace env unset <workspace> NAME...',
  async run(ctx, args) {
    const [workspace, ...names] = args.positionals;
    if (!workspace || names.length === 0) return ctx.fail({ code: 'usage', message: 'usage: wharf workspace env unset <workspace> NAME...' });
    for (const name of names) {
      const problem = checkVariableName(name);
      if (problem) return ctx.fail({ code: 'usage', message: problem });
    }
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const answer = await api.value.json('PATCH', `${base(workspace)}/env`, { json: { variables: Object.fromEntries(names.map((n) => [n, null])) } });
    if (!answer.ok) return ctx.fail(answer.error);
    ctx.io.stderr.write(`removed ${names.join(', ')} from workspace "${workspace}"\n`);
    return 0;
  },
};

/** `config-set …` and `secret-set …`: list, put (replace the whole set), delete. */
function setCommands(kind: 'config' | 'secret'): CliCommand[] {
  const word = `${kind}-set`;
  const path = (workspace: string, name?: string) => `${base(workspace)}/${kind}-sets${name ? `/${encodeURIComponent(name)}` : ''}`;
  const secret = kind === 'secret';
  return [
    {
      name: [word, 'list'],
      summary: secret ? 'list the workspace\'s secret sets: names and keys, never values' : 'list the workspace\'s config sets and their variables',
      usage: `${word} list <workspace> [--json]`,
      options: { json: { type: 'boolean', description: 'print the API answer {"sets": [...]} as JSON' } },
      async run(ctx, args) {
        const [workspace, ...extra] = args.positionals;
        if (!workspace || extra.length > 0) return ctx.fail({ code: 'usage', message: `usage: wharf ${word} list <workspace> [--json]` });
        const api = await ctx.api();
        if (!api.ok) return ctx.fail(api.error);
        const answer = await api.value.json<{ sets: Array<ConfigSetInfo | SecretSetInfo> }>('GET', path(workspace));
        if (!answer.ok) return ctx.fail(answer.error);
        if (args.values.json) {
          ctx.io.stdout.write(`${JSON.stringify(answer.value, null, 2)}\n`);
          return 0;
        }
        const sets = answer.value.sets;
        if (sets.length === 0) {
          ctx.io.stdout.write(`Workspace "${workspace}" has no ${kind} sets.\n`);
          return 0;
        }
        const rows = sets.flatMap((set) =>
          'keys' in set ? set.keys.map((key) => [set.name, key, '••••']) : Object.entries(set.variables).map(([key, value]) => [set.name, key, value]),
        );
        ctx.io.stdout.write(formatTable(['SET', 'NAME', 'VALUE'], rows));
        return 0;
      },
    },
    {
      name: [word, 'put'],
      summary: `create or replace a ${kind} set (NAME=value; NAME alone takes your environment's value)`,
      usage: `${word} put <workspace> <set> NAME=value|NAME...`,
      description: secret ? 'The values cannot be read back: wharf secret-set list shows the names only.' : undefined,
      async run(ctx, args) {
        const [workspace, name, ...items] = args.positionals;
        if (!workspace || !name || items.length === 0) return ctx.fail({ code: 'usage', message: `usage: wharf ${word} put <workspace> <set> NAME=value|NAME...` });
        const bad = checkSet(name);
        if (bad) return ctx.fail(bad);
        const variables = parseAssignments(ctx, items);
        if (!variables.ok) return ctx.fail(variables.error);
        const api = await ctx.api();
        if (!api.ok) return ctx.fail(api.error);
        const answer = await api.value.json('PUT', path(workspace, name), { json: { variables: variables.value } });
        if (!answer.ok) return ctx.fail(answer.error);
        ctx.io.stderr.write(`${kind} set "${name}" of workspace "${workspace}" now holds ${Object.keys(variables.value).sort().join(', ')}\n`);
        return 0;
      },
    },
    {
      name: [word, 'delete'],
      summary: `delete a ${kind} set`,
      usage: `${word} delete <workspace> <set>`,
      async run(ctx, args) {
        const [workspace, name, ...extra] = args.positionals;
        if (!workspace || !name || extra.length > 0) return ctx.fail({ code: 'usage', message: `usage: wharf ${word} delete <workspace> <set>` });
        const api = await ctx.api();
        if (!api.ok) return ctx.fail(api.error);
        const answer = await api.value.json('DELETE', path(workspace, name));
        if (!answer.ok) return ctx.fail(answer.error);
        ctx.io.stderr.write(`deleted ${kind} set "${name}" of workspace "${workspace}"\n`);
        return 0;
      },
    },
  ];
}

export const configSetCommands = setCommands('config');
export const secretSetCommands = setCommands('secret');
