import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWebSocketStream } from 'ws';
import { fail, formatPublicKey, ok, parseSshKey, type Result } from '../common/index.ts';
import type { CliCommand, CliFailure } from './types.ts';
import { describeClose, findWorkspace, openWorkspaceTunnel } from './workspace-tunnel.ts';

const DEFAULT_KEYS = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub'];

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The public half of the user's key, in OpenSSH format. A private key file is accepted too
 * (only its public half is ever sent), since `-i ~/.ssh/id_ed25519` is what people type.
 */
export async function loadPublicKey(identity: string | undefined, sshDir: string): Promise<Result<{ file: string; publicKey: string }, CliFailure>> {
  const candidates = identity ? [identity, `${identity}.pub`] : DEFAULT_KEYS.map((name) => join(sshDir, name));
  for (const file of candidates) {
    let text: string | undefined;
    try {
      text = await readIfExists(file);
    } catch (err) {
      return fail({ code: 'local', message: `cannot read ${file}: ${(err as Error).message}` });
    }
    if (text === undefined) continue;
    const parsed = parseSshKey(text);
    if (!parsed.ok) {
      if (identity && file === identity && !file.endsWith('.pub')) continue; // maybe an encrypted private key: try `.pub`
      return fail({ code: 'local', message: `${file} is not an SSH key: ${parsed.error}` });
    }
    return ok({ file, publicKey: formatPublicKey(parsed.value, 'wharf-proxy') });
  }
  return fail({
    code: 'local',
    message: identity
      ? `no SSH public key at ${identity} (or ${identity}.pub)`
      : `no SSH public key found (looked for ${DEFAULT_KEYS.map((n) => join(sshDir, n)).join(', ')}); pass --identity <file.pub>`,
  });
}

export const proxyCommand: CliCommand = {
  name: ['proxy'],
  summary: 'connect stdin/stdout to a workspace\'s SSH server (for OpenSSH ProxyCommand)',
  usage: 'proxy <workspace> [--identity <file.pub>]',
  description: `
Registers your public key with the workspace for a short time, then relays raw SSH bytes
between stdin/stdout and the workspace agent through the server. Use it from OpenSSH:

  ssh -o ProxyCommand='wharf proxy %h' wharf@<workspace>

A trailing ".wharf" is dropped from the name, for a "Host *.wharf" block in ~/.ssh/config.

The key defaults to the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub that exists.`,
  options: {
    identity: { type: 'string', short: 'i', valueName: '<file.pub>', description: 'public key that OpenSSH will authenticate with' },
  },
  async run(ctx, args) {
    const [target] = args.positionals;
    // `Host *.wharf` in ~/.ssh/config hands over `ws1.wharf`; workspace ids never contain a dot.
    const workspaceId = target?.replace(/\.wharf$/, '');
    if (!workspaceId || args.positionals.length > 1) return ctx.fail({ code: 'usage', message: 'usage: wharf proxy <workspace> [--identity <file.pub>]' });
    const identity = typeof args.values.identity === 'string' ? args.values.identity : undefined;
    const key = await loadPublicKey(identity, ctx.config.sshDir);
    if (!key.ok) return ctx.fail(key.error);
    const api = await ctx.api();
    if (!api.ok) return ctx.fail(api.error);
    const workspace = await findWorkspace(api.value, workspaceId);
    if (!workspace.ok) return ctx.fail(workspace.error);
    const socket = await openWorkspaceTunnel(api.value, workspace.value, {
      publicKey: key.value.publicKey,
      label: 'wharf-proxy',
      ttlSeconds: ctx.config.limits.proxyKeyTtlSeconds,
    });
    if (!socket.ok) return ctx.fail(socket.error);

    const { stdin, stdout } = ctx.io;
    const stream = createWebSocketStream(socket.value);
    return new Promise<number>((resolve) => {
      let problem: string | undefined;
      socket.value.on('close', (code: number, reason: Buffer) => {
        problem = describeClose(code, reason.toString());
      });
      stream.on('error', (err) => {
        problem ??= `the tunnel failed: ${err.message}`;
      });
      stdin.pipe(stream);
      stream.pipe(stdout, { end: false });
      stream.on('close', () => {
        stdin.unpipe(stream);
        if (problem) resolve(ctx.fail({ code: 'unreachable', message: problem }));
        else resolve(0);
      });
    });
  },
};
