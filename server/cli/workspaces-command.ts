import type { Workspace } from '../common/index.ts';
import type { CliCommand } from './types.ts';

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export const workspacesCommand: CliCommand = {
  name: ['workspaces'],
  summary: 'list the workspaces on the server',
  usage: 'workspaces [--json]',
  options: {
    json: { type: 'boolean', description: 'print the API answer as JSON instead of a table' },
  },
  async run(ctx, args) {
    if (args.positionals.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf workspaces [--json]' });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const listed = await api.value.json<{ workspaces: Workspace[] }>('GET', '/api/workspaces');
    if (!listed.ok) return ctx.fail(listed.error);
    const workspaces = listed.value?.workspaces;
    if (!Array.isArray(workspaces)) return ctx.fail({ code: 'server', message: `${api.value.url} answered GET /api/workspaces without a workspace list` });
    if (args.values.json) {
      ctx.io.stdout.write(`${JSON.stringify(workspaces, null, 2)}\n`);
      return 0;
    }
    if (workspaces.length === 0) {
      ctx.io.stdout.write(`No workspaces on ${api.value.url} yet.\n`);
      return 0;
    }
    const rows = workspaces.map((w) => [w.id, w.name, w.status, w.driver, w.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')]);
    ctx.io.stdout.write(formatTable(['ID', 'NAME', 'STATUS', 'DRIVER', 'CREATED'], rows));
    return 0;
  },
};
