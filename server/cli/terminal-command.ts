import { constants as osConstants } from 'node:os';
import type WebSocket from 'ws';
import { CLOSE_CODES, createQueryFilter } from '../common/index.ts';
import type { TerminalInfo } from '../terminal/index.ts';
import type { CliCommand, CliContext } from './types.ts';

/** Ctrl-] detaches, as in telnet: it is rarely needed by programs in a terminal. */
const DETACH_KEY = 0x1d;

const terminalsPath = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}/terminals`;

function toExitCode(code: number | null, signal: string | null): number {
  if (typeof code === 'number') return code;
  const number = signal ? osConstants.signals[signal as keyof typeof osConstants.signals] : undefined;
  return number ? 128 + number : 255;
}

type Outcome = { kind: 'exited'; code: number } | { kind: 'detached' } | { kind: 'closed'; code: number; reason: string };

/** Joins the local terminal to the websocket until the process exits, we detach, or the link drops. */
function runAttached(ctx: CliContext, ws: WebSocket, viewer: boolean): Promise<Outcome> {
  const { stdin, stdout, stderr } = ctx.io;
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  return new Promise((resolve) => {
    let exit: { code: number | null; signal: string | null } | undefined;
    let detached = false;
    if (raw) stdin.setRawMode?.(true);
    // The screen beside the pty answers the program's queries; the local terminal must not as well.
    const queries = createQueryFilter();

    const sendSize = () => {
      if (stdout.columns && stdout.rows) ws.send(JSON.stringify({ type: 'resize', cols: stdout.columns, rows: stdout.rows }));
    };
    const onInput = (data: Buffer) => {
      const at = raw ? data.indexOf(DETACH_KEY) : -1;
      const keys = at === -1 ? data : data.subarray(0, at);
      if (keys.length > 0 && !viewer) ws.send(keys, { binary: true });
      if (at !== -1) {
        detached = true;
        ws.close(1000, 'detached');
      }
    };
    stdin.on('data', onInput);
    stdout.on('resize', sendSize);
    stdin.resume();

    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        // A slow local terminal holds the server back for this client only (it resyncs later).
        const output = queries.filter(data);
        if (output.length > 0 && !stdout.write(output)) {
          ws.pause();
          stdout.once('drain', () => ws.resume());
        }
        return;
      }
      let message: { type?: string; data?: string; message?: string; code?: number | null; signal?: string | null };
      try {
        message = JSON.parse(data.toString('utf8')) as typeof message;
      } catch {
        return;
      }
      if (message.type === 'snapshot' || message.type === 'resync') {
        // Reset the local terminal, then draw the current screen.
        queries.reset();
        stdout.write(`\x1bc${message.data ?? ''}`);
      } else if (message.type === 'exit') {
        exit = { code: message.code ?? null, signal: message.signal ?? null };
      } else if (message.type === 'error') {
        stderr.write(`\r\nwharf: ${message.message}\r\n`);
      }
    });

    // The API client hands the socket over paused, so nothing is emitted before we listen.
    ws.resume();

    ws.on('close', (code, reason) => {
      const rest = queries.flush();
      if (rest.length > 0) stdout.write(rest);
      stdin.off('data', onInput);
      stdout.off('resize', sendSize);
      stdin.pause();
      if (raw) stdin.setRawMode?.(false);
      if (exit) resolve({ kind: 'exited', code: toExitCode(exit.code, exit.signal) });
      else if (detached) resolve({ kind: 'detached' });
      else resolve({ kind: 'closed', code, reason: reason.toString() });
    });
  });
}

export const terminalAttachCommand: CliCommand = {
  name: ['terminal', 'attach'],
  summary: 'attach this terminal to a shared terminal of a workspace',
  usage: 'terminal attach <workspace> [id] [--viewer]',
  description: `
Without an id, starts a new terminal (the workspace's shell) and attaches to it.
Everyone attached to the same terminal sees the same screen; the pty takes the size of the
smallest attached editor. Press Ctrl-] to detach: the terminal keeps running and can be
attached again later. When its program exits, so does this command, with its exit status.`,
  options: {
    viewer: { type: 'boolean', description: 'watch only: keystrokes (other than Ctrl-]) are not sent' },
  },
  async run(ctx, args) {
    const [workspace, given] = args.positionals;
    if (!workspace || args.positionals.length > 2) return ctx.fail({ code: 'usage', message: 'usage: wharf terminal attach <workspace> [id]' });
    const viewer = args.values.viewer === true;
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const { stdout, stderr } = ctx.io;
    const size = stdout.isTTY && stdout.columns && stdout.rows ? { cols: stdout.columns, rows: stdout.rows } : undefined;

    let id = given;
    if (!id) {
      const created = await api.value.json<TerminalInfo>('POST', terminalsPath(workspace), { json: size ?? {} });
      if (!created.ok) {
        if (created.error.code === 'not_found') return ctx.fail({ code: 'not_found', message: `no workspace "${workspace}" on ${api.value.url}; "wharf workspaces" lists them` });
        return ctx.fail(created.error);
      }
      id = created.value.id;
    }
    const query = new URLSearchParams();
    if (size && !viewer) {
      query.set('cols', String(size.cols));
      query.set('rows', String(size.rows));
    }
    if (viewer) query.set('role', 'viewer');
    const socket = await api.value.openWebSocket(`${terminalsPath(workspace)}/${encodeURIComponent(id)}/attach?${query}`);
    if (!socket.ok) return ctx.fail(socket.error);

    stderr.write(`wharf: attached to terminal ${id} of ${workspace}${viewer ? ' as a viewer' : ''}; Ctrl-] detaches\n`);
    const outcome = await runAttached(ctx, socket.value, viewer);
    switch (outcome.kind) {
      case 'exited':
        return outcome.code;
      case 'detached':
        stderr.write(`\nwharf: detached; terminal ${id} keeps running ("wharf terminal attach ${workspace} ${id}" to come back)\n`);
        return 0;
      default:
        if (outcome.code === CLOSE_CODES.notFound) return ctx.fail({ code: 'not_found', message: outcome.reason || `no terminal "${id}" in workspace "${workspace}"` });
        return ctx.fail({ code: 'server', message: `the connection to the terminal closed (${outcome.code}${outcome.reason ? `: ${outcome.reason}` : ''})` });
    }
  },
};

export const terminalListCommand: CliCommand = {
  name: ['terminal', 'list'],
  summary: "list a workspace's shared terminals",
  usage: 'terminal list <workspace>',
  async run(ctx, args) {
    const [workspace] = args.positionals;
    if (!workspace || args.positionals.length > 1) return ctx.fail({ code: 'usage', message: 'usage: wharf terminal list <workspace>' });
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const listed = await api.value.json<{ terminals: TerminalInfo[] }>('GET', terminalsPath(workspace));
    if (!listed.ok) return ctx.fail(listed.error);
    const rows = listed.value.terminals.map((t) => [
      t.id,
      t.exited ? `exited ${t.exited.signal ?? t.exited.code}` : 'running',
      String(t.clients),
      `${t.cols}x${t.rows}`,
      t.cwd,
      t.command,
    ]);
    const header = ['ID', 'STATE', 'CLIENTS', 'SIZE', 'CWD', 'COMMAND'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const row of [header, ...rows]) ctx.io.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`);
    return 0;
  },
};
