import { runBridge } from '../common/index.ts';
import type { CliCommand } from './types.ts';

export const agentBridgeCommand: CliCommand = {
  name: ['agent', 'bridge'],
  summary: 'join stdin/stdout to a workspace agent\'s unix socket (used by container drivers)',
  usage: 'agent bridge --socket <path> [--wait-ms <ms>]',
  description: `
Runs inside a workspace: container drivers exec this and speak SSH over its stdio. The same
bridge is the agent program's own \`bridge\` entry; this is an alias that needs only the helper.`,
  options: {
    socket: { type: 'string', valueName: '<path>', description: 'the agent\'s unix socket' },
    'wait-ms': { type: 'string', valueName: '<ms>', description: 'keep trying this long while the agent does not listen yet (default 0: one try)' },
  },
  async run(ctx, args) {
    const socket = args.values.socket;
    if (typeof socket !== 'string' || !socket || args.positionals.length > 0) {
      return ctx.fail({ code: 'usage', message: 'usage: wharf agent bridge --socket <path> [--wait-ms <ms>]' });
    }
    const waitMs = Number(args.values['wait-ms'] ?? 0);
    if (!Number.isFinite(waitMs) || waitMs < 0) return ctx.fail({ code: 'usage', message: '--wait-ms must be a number of milliseconds' });
    return runBridge(socket, ctx.io.stdin, ctx.io.stdout, { waitMs });
  },
};
