import { constants as osConstants } from 'node:os';
import type ssh2 from 'ssh2';
import { generateKeyPair } from '../common/index.ts';
import type { CliCommand, CliContext } from './types.ts';
import { connectSsh, findWorkspace, openWorkspaceTunnel } from './workspace-tunnel.ts';

/** Exit code like OpenSSH's: the remote status, 128+n for a signal, 255 when none came back. */
function exitCodeOf(code: number | null | undefined, signal: string | null | undefined): number {
  if (typeof code === 'number') return code;
  if (signal) {
    const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as keyof typeof osConstants.signals;
    return 128 + (osConstants.signals[name] ?? 0);
  }
  return 255;
}

/**
 * Opens the session and starts piping inside the open callback: a fast command's exit status
 * can arrive in the same packet batch as the open confirmation, before an awaiting caller
 * could listen for it.
 */
function runSession(ctx: CliContext, client: ssh2.Client, command: string, pty: ssh2.PseudoTtyOptions | undefined, raw: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const opened = (err: Error | undefined, channel: ssh2.ClientChannel) => {
      if (err) reject(err);
      else resolve(runChannel(ctx, client, channel, raw));
    };
    if (command) client.exec(command, pty ? { pty } : {}, opened);
    else if (pty) client.shell(pty, opened);
    else client.shell(false, opened);
  });
}

/** Pipes the terminal through the channel until it closes; resolves to the exit code. */
function runChannel(ctx: CliContext, client: ssh2.Client, channel: ssh2.ClientChannel, raw: boolean): Promise<number> {
  const { stdin, stdout, stderr } = ctx.io;
  return new Promise((resolve) => {
    let finished = false;
    let code: number | null | undefined;
    let signal: string | undefined;
    const onResize = () => channel.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
    channel.on('exit', (c: number | null, s?: string) => {
      code = c;
      signal = s;
    });
    // Honour back-pressure both ways so a slow terminal or a large upload stays bounded.
    channel.on('data', (d: Buffer) => {
      if (!stdout.write(d)) {
        channel.pause();
        stdout.once('drain', () => channel.resume());
      }
    });
    channel.stderr.on('data', (d: Buffer) => {
      if (!stderr.write(d)) {
        channel.stderr.pause();
        stderr.once('drain', () => channel.stderr.resume());
      }
    });
    const onInput = (d: Buffer) => {
      if (!channel.write(d)) {
        stdin.pause();
        channel.once('drain', () => stdin.resume());
      }
    };
    const onEnd = () => channel.end();
    stdin.on('data', onInput);
    stdin.on('end', onEnd);
    if (raw) {
      stdin.setRawMode?.(true);
      stdout.on('resize', onResize);
    }
    const finish = (lost: boolean) => {
      if (finished) return;
      finished = true;
      stdin.off('data', onInput);
      stdin.off('end', onEnd);
      stdin.pause();
      if (raw) {
        stdin.setRawMode?.(false);
        stdout.off('resize', onResize);
      }
      if (code === undefined && signal === undefined) {
        stderr.write(lost ? '\r\nwharf: the connection to the workspace was lost\r\n' : '\r\nwharf: the session ended without an exit status\r\n');
        resolve(255);
      } else resolve(exitCodeOf(code, signal));
    };
    channel.on('close', () => finish(false));
    client.on('close', () => finish(true));
  });
}

export const sshCommand: CliCommand = {
  name: ['ssh'],
  summary: 'open a shell in a workspace, or run a command there',
  usage: 'ssh [-t|-T] <workspace> [--] [command...]',
  description: `
Without a command: an interactive login shell (with a terminal when stdin is one).
With a command: runs it, streams its output and exits with its exit status.
The connection is SSH over the server's websocket tunnel, authenticated end to end with a
throw-away ed25519 key that is registered for this session only.`,
  options: {
    tty: { type: 'boolean', short: 't', description: 'force a pseudo-terminal even for a command' },
    'no-tty': { type: 'boolean', short: 'T', description: 'never allocate a pseudo-terminal' },
  },
  passthroughAfter: 1,
  async run(ctx, args) {
    const [workspaceId] = args.positionals;
    if (!workspaceId || args.positionals.length > 1) return ctx.fail({ code: 'usage', message: 'usage: wharf ssh <workspace> [command...]' });
    const command = args.rest.join(' ');
    const interactive = ctx.io.stdin.isTTY === true && ctx.io.stdout.isTTY === true;
    const wantPty = args.values['no-tty'] ? false : args.values.tty ? true : !command && interactive;

    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const workspace = await findWorkspace(api.value, workspaceId);
    if (!workspace.ok) return ctx.fail(workspace.error);
    const key = generateKeyPair('wharf-ssh');
    const socket = await openWorkspaceTunnel(api.value, workspace.value, {
      publicKey: key.publicKey,
      label: 'wharf-ssh',
      ttlSeconds: ctx.config.limits.sessionKeyTtlSeconds,
    });
    if (!socket.ok) return ctx.fail(socket.error);
    const client = await connectSsh(socket.value, workspace.value, key.privateKey, {
      readyTimeoutMs: ctx.config.limits.sshReadyTimeoutMs,
      keepaliveIntervalMs: ctx.config.limits.sshKeepaliveIntervalMs,
    });
    if (!client.ok) return ctx.fail(client.error);

    const pty = wantPty ? { rows: ctx.io.stdout.rows ?? 24, cols: ctx.io.stdout.columns ?? 80, term: ctx.config.term } : undefined;
    let exitCode: number;
    try {
      exitCode = await runSession(ctx, client.value, command, pty, wantPty && ctx.io.stdin.isTTY === true);
    } catch (err) {
      exitCode = ctx.fail({ code: 'server', message: `the workspace agent refused the session: ${(err as Error).message}` });
    }
    client.value.end();
    socket.value.close();
    return exitCode;
  },
};
