import ssh2 from 'ssh2';
import type WebSocket from 'ws';
import { fail, ok, parseSshKey, type Result, type Workspace } from '../common/index.ts';
import { createTunnelStream } from './tunnel-stream.ts';
import type { ApiClient, CliFailure } from './types.ts';

const workspacePath = (id: string) => `/api/workspaces/${encodeURIComponent(id)}`;

/** The workspace's record, with a hint when the name is wrong. */
export async function findWorkspace(api: ApiClient, id: string): Promise<Result<Workspace, CliFailure>> {
  const found = await api.json<Workspace>('GET', workspacePath(id));
  if (!found.ok && found.error.code === 'not_found') {
    return fail({ code: 'not_found', message: `no workspace "${id}" on ${api.url}; "wharf workspaces" lists them` });
  }
  return found;
}

/**
 * Lets `publicKey` into the workspace for a short time, then opens the raw SSH tunnel. The
 * server only relays bytes: SSH authentication is between this key and the agent.
 */
export async function openWorkspaceTunnel(
  api: ApiClient,
  workspace: Workspace,
  key: { publicKey: string; label: string; ttlSeconds: number; forward?: string[]; reverse?: number[] },
): Promise<Result<WebSocket, CliFailure>> {
  if (workspace.status === 'stopped') {
    return fail({ code: 'conflict', message: `workspace "${workspace.id}" is stopped; start it first (POST ${workspacePath(workspace.id)}/start)` });
  }
  const registered = await api.json('POST', `${workspacePath(workspace.id)}/session-keys`, {
    json: { publicKey: key.publicKey, ttlSeconds: key.ttlSeconds, label: key.label, forward: key.forward, reverse: key.reverse },
  });
  if (!registered.ok) return registered;
  return api.openWebSocket(`${workspacePath(workspace.id)}/ssh`, { unmasked: true });
}

/** Why the tunnel closed, in words, when it was not a normal close. */
export function describeClose(code: number, reason: string): string | undefined {
  if (code === 1000 || code === 1005) return undefined;
  return `the tunnel closed (${code}${reason ? `: ${reason}` : ''})`;
}

/** SSH over the tunnel, with the agent's host key pinned to the one the server reported. */
export function connectSsh(
  socket: WebSocket,
  workspace: Workspace,
  privateKey: string,
  timing: { readyTimeoutMs: number; keepaliveIntervalMs: number; keepaliveCountMax?: number },
): Promise<Result<ssh2.Client, CliFailure>> {
  const expected = parseSshKey(workspace.hostKey);
  if (!expected.ok) {
    return Promise.resolve(fail({ code: 'server', message: `the server reported a host key for "${workspace.id}" that cannot be parsed: ${expected.error}` }));
  }
  const expectedKey = expected.value.getPublicSSH();
  const client = new ssh2.Client();
  const stream = createTunnelStream(socket);
  // The websocket stream reports its own errors through the SSH client.
  stream.on('error', () => {});
  return new Promise((resolve) => {
    let hostKeyMismatch = false;
    client.once('ready', () => resolve(ok(client)));
    // \`on\`: ssh2 can report a second error (a keepalive timeout after a lost connection), and an
    // error with no listener would end the helper with a stack trace instead of its message.
    client.on('error', (err) => {
      socket.terminate();
      resolve(
        fail({
          code: hostKeyMismatch ? 'server' : 'unreachable',
          message: hostKeyMismatch
            ? `the workspace agent of "${workspace.id}" presented an unexpected host key; refusing to continue`
            : `SSH to workspace "${workspace.id}" failed: ${err.message}`,
        }),
      );
    });
    client.connect({
      sock: stream,
      username: 'wharf',
      privateKey,
      readyTimeout: timing.readyTimeoutMs,
      keepaliveInterval: timing.keepaliveIntervalMs,
      ...(timing.keepaliveCountMax === undefined ? {} : { keepaliveCountMax: timing.keepaliveCountMax }),
      hostVerifier: (key: Buffer) => {
        hostKeyMismatch = !key.equals(expectedKey);
        return !hostKeyMismatch;
      },
    });
  });
}
