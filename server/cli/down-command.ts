import { rm } from 'node:fs/promises';
import { isSessionRunning, listSessions } from './detached-up.ts';
import type { CliCommand } from './types.ts';

const POLL_MS = 100;

export const downCommand: CliCommand = {
  name: ['down'],
  summary: 'stop a dev service that "wharf up --detach" runs in the background',
  usage: 'down <name> [--workspace <id>]',
  description: `
Sends SIGTERM to the background "wharf up <name>", which stops its local command (and everything
that command started) and closes its rules, then waits for it to end. Fails when no such session
is running.`,
  options: {
    workspace: { type: 'string', short: 'w', valueName: '<id>', description: 'the workspace, when sessions of that name run for more than one' },
  },
  async run(ctx, args) {
    const [name, ...extra] = args.positionals;
    if (!name || extra.length > 0) return ctx.fail({ code: 'usage', message: 'usage: wharf down <name> [--workspace <id>]' });
    const workspace = typeof args.values.workspace === 'string' ? args.values.workspace : undefined;
    const sessions = (await listSessions(ctx.config.stateDir)).filter((s) => s.name === name && (workspace === undefined || s.workspace === workspace));
    if (sessions.length === 0) {
      return ctx.fail({ code: 'not_found', message: `no "wharf up ${name}"${workspace ? ` for workspace "${workspace}"` : ''} runs in the background ("wharf up ${name} --detach" starts one)` });
    }
    if (sessions.length > 1) {
      const which = sessions.map((s) => `"${s.workspace}"`).join(', ');
      return ctx.fail({ code: 'usage', message: `"wharf up ${name}" was started for more than one workspace (${which}); say which with --workspace <id>` });
    }
    const [session] = sessions;
    const what = `wharf up ${name} (workspace "${session.workspace}", pid ${session.pid})`;
    if (!(await isSessionRunning(session))) {
      await rm(session.file, { force: true });
      return ctx.fail({ code: 'not_found', message: `${what} is not running any more; its log: ${session.log}` });
    }
    process.kill(session.pid, 'SIGTERM');
    // It gives its local command killGraceMs before SIGKILL, then closes its rules.
    const waitMs = ctx.config.limits.hybrid.killGraceMs + 10_000;
    const deadline = Date.now() + waitMs;
    while (await isSessionRunning(session)) {
      if (Date.now() > deadline) return ctx.fail({ code: 'local', message: `${what} did not stop within ${waitMs / 1000}s of SIGTERM; its log: ${session.log}` });
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    await rm(session.file, { force: true });
    ctx.io.stdout.write(`wharf down: stopped ${what}; its log: ${session.log}\n`);
    return 0;
  },
};
