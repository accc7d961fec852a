import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { Duplex } from 'node:stream';
import { join } from 'node:path';
import pty from 'node-pty';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/workspace/index.ts';
import { itProcessOnly, testDriver } from './support/driver-matrix.ts';
import { createWorkspace, execOver, type TestServer } from './support/server.ts';
import { loginWharf, runProgram, runWharf, startServerAndHome, userEnv, WHARF } from './support/wharf-cli.ts';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

// A story in order (one user's home folder carried from step to step: before login, login, then
// what a logged-in user does). `shuffle: false` keeps the steps in order under --sequence.shuffle;
// every other suite passes in any order.
describe('wharf CLI', { shuffle: false }, () => {
  let server: TestServer;
  let home: string;

  beforeAll(async () => {
    ({ server, home } = await startServerAndHome('ws1', 'wharf-cli-home-'));
  });
  afterAll(() => server.dispose());

  it('explains what to do before login, and prints help', async () => {
    const before = await runWharf(home, ['workspaces']);
    expect(before.code).toBe(1);
    expect(before.stderr).toMatch(/not logged in: run "wharf login/);

    const help = await runWharf(home, ['--help']);
    expect(help.code).toBe(0);
    for (const command of ['login', 'workspaces', 'ssh', 'proxy', 'agent bridge']) expect(help.stdout).toContain(command);
    const sshHelp = await runWharf(home, ['ssh', '--help']);
    expect(sshHelp.stdout).toMatch(/Usage: wharf ssh/);
    const unknown = await runWharf(home, ['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('refuses a wrong token and saves nothing', async () => {
    const res = await runWharf(home, ['login', server.url, '--token', 'not-the-token']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/refused that token \(401 Unauthorized\); nothing was saved/);
    await expect(stat(join(home, 'config', 'wharf', 'credentials.json'))).rejects.toThrow(/ENOENT/);
  });

  it('says when the server cannot be reached', async () => {
    const res = await runWharf(home, ['login', `http://127.0.0.1:${await closedPort()}`, '--token', 'x']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot reach the wharf server at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it('logs in, storing the credentials readable only by the user', async () => {
    const res = await runWharf(home, ['login', server.url, '--token', server.token]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Logged in to http:\/\/127\.0\.0\.1:\d+/);
    const file = join(home, 'config', 'wharf', 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ url: server.url, token: server.token });
  });

  it('accepts the printed login URL and a token on stdin', async () => {
    const other = await server.tempDir('wharf-cli-home2-');
    const fromUrl = await runWharf(other, ['login', server.loginUrl]);
    expect(fromUrl.code).toBe(0);
    const stored = JSON.parse(await readFile(join(other, 'config', 'wharf', 'credentials.json'), 'utf8')) as { url: string };
    expect(stored.url).toBe(server.url);
    const fromStdin = await runWharf(other, ['login', server.url, '--token', '-'], { input: `${server.token}\n` });
    expect(fromStdin.code).toBe(0);
  });

  it('lists workspaces as a table and as JSON', async () => {
    const table = await runWharf(home, ['workspaces']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+STATUS\s+DRIVER\s+CREATED$/);
    expect(table.stdout).toMatch(new RegExp(`^ws1\\s+ws1\\s+running\\s+${testDriver()}\\s+\\d{4}-`, 'm'));
    const json = await runWharf(home, ['workspaces', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject([{ id: 'ws1', status: 'running' }]);
  });

  it('runs a command over ssh and propagates its output and exit code', async () => {
    const hi = await runWharf(home, ['ssh', 'ws1', '--', 'echo', 'hi']);
    expect(hi).toMatchObject({ code: 0, stdout: 'hi\n' });
    const three = await runWharf(home, ['ssh', 'ws1', '--', 'exit 3']);
    expect(three.code).toBe(3);
    // Without `--` the command's own options are not taken for the helper's.
    const ls = await runWharf(home, ['ssh', 'ws1', 'ls', '-a', '/', '>/dev/null;', 'echo', 'listed', '>&2']);
    expect(ls).toMatchObject({ code: 0, stderr: 'listed\n' });
  });

  it('passes stdin through and reports a signal death as 128+n', async () => {
    const cat = await runWharf(home, ['ssh', 'ws1', 'tr', 'a-z', 'A-Z'], { input: 'shout\n' });
    expect(cat).toMatchObject({ code: 0, stdout: 'SHOUT\n' });
    const killed = await runWharf(home, ['ssh', 'ws1', 'kill -KILL $$']);
    expect(killed.code).toBe(128 + 9);
  });

  it('gives a pseudo-terminal when asked', async () => {
    const res = await runWharf(home, ['ssh', '-t', 'ws1', 'tty'], { env: { TERM: 'xterm' } });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/\/dev\/pts\/\d+/);
  });

  it('opens an interactive shell in a real terminal, following window-size changes', async () => {
    const term = pty.spawn(process.execPath, [WHARF, 'ssh', 'ws1'], {
      cols: 100,
      rows: 30,
      cwd: home,
      env: userEnv(home, { TERM: 'xterm' }),
    });
    let screen = '';
    term.onData((d) => (screen += d));
    const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    const waitFor = async (pattern: RegExp) => {
      for (let i = 0; i < 200 && !pattern.test(screen); i++) await new Promise((r) => setTimeout(r, 50));
      expect(screen).toMatch(pattern);
    };
    // Raw mode: the remote shell (not the local terminal) echoes and interprets keys.
    term.write('echo "size=$(stty size)"\r');
    await waitFor(/size=30 100/);
    term.resize(120, 40);
    await new Promise((r) => setTimeout(r, 200));
    term.write('echo "size=$(stty size)"\r');
    await waitFor(/size=40 120/);
    // Ctrl-C reaches the remote foreground job instead of killing the local helper.
    term.write('sleep 30\r');
    await new Promise((r) => setTimeout(r, 300));
    term.write('\x03');
    term.write('echo "alive=$((6*7))"\r');
    await waitFor(/alive=42/);
    term.write('exit 5\r');
    expect(await exited).toBe(5);
  });

  it('is downloadable as one file that runs without the checkout', async () => {
    const res = await server.api('/api/downloads/wharf.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="wharf.js"');
    const etag = res.headers.get('etag') as string;
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.subarray(0, 19).toString()).toBe('#!/usr/bin/env node');
    expect((await server.api('/api/downloads/wharf.js', { headers: { 'if-none-match': etag } })).status).toBe(304);

    const elsewhere = await server.tempDir('wharf-download-');
    await writeFile(join(elsewhere, 'wharf.js'), body);
    const run = (args: string[]) => runProgram(process.execPath, [join(elsewhere, 'wharf.js'), ...args], { cwd: elsewhere, env: userEnv(home) });
    expect(await run(['ssh', 'ws1', '--', 'echo', 'bundled'])).toEqual({ code: 0, stdout: 'bundled\n', stderr: '' });
    expect((await run(['ssh', 'ws1', 'exit 6'])).code).toBe(6);
  });

  // The agent's socket is a file of the process driver's run dir on this machine.
  itProcessOnly('bridges stdio to an agent socket with "agent bridge"', async () => {
    const runDir = join(server.dataDir, 'run');
    const socket = join(runDir, 'ws1', 'agent.sock');
    const bridge = spawn(process.execPath, [WHARF, 'agent', 'bridge', '--socket', socket], { cwd: home, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdio = Duplex.from({ readable: bridge.stdout, writable: bridge.stdin });
    const client = new ssh2.Client();
    // The server's own key is in every workspace's authorized_keys.
    const privateKey = await readFile(join(server.dataDir, 'server_ed25519'), 'utf8');
    await new Promise<void>((ready, reject) => {
      client.once('ready', () => ready());
      client.once('error', reject);
      client.connect({ sock: stdio, username: 'wharf', privateKey });
    });
    const out = await execOver(client, 'echo bridged; exit 2');
    expect(out).toMatchObject({ code: 2, stdout: 'bridged\n' });
    client.end();
    expect(await new Promise((done) => bridge.on('close', done))).toBe(0);

    const missing = await runWharf(home, ['agent', 'bridge', '--socket', join(home, 'nope.sock')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.sock: connect ENOENT/);
  });

  it('names an unknown workspace clearly', async () => {
    const res = await runWharf(home, ['ssh', 'nope', 'true']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no workspace "nope" on http:\/\/127\.0\.0\.1:\d+; "wharf workspaces" lists them/);
  });

  it('tells the user to log in again when the stored token stops working', async () => {
    const other = await server.tempDir('wharf-cli-home3-');
    await loginWharf(server, other);
    const file = join(other, 'config', 'wharf', 'credentials.json');
    await writeFile(file, JSON.stringify({ url: server.url, token: 'revoked' }), { mode: 0o600 });
    const pub = join(other, 'id.pub');
    await writeFile(pub, generateKeyPair('cli-test').publicKey);
    for (const args of [['workspaces'], ['ssh', 'ws1', 'true'], ['proxy', 'ws1', '--identity', pub]]) {
      const res = await runWharf(other, args);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr).toMatch(/refused the token \(401 Unauthorized\); run "wharf login/);
    }
  });

  it('uses WHARF_URL and WHARF_TOKEN over the stored credentials', async () => {
    const res = await runWharf(home, ['workspaces'], { env: { WHARF_TOKEN: 'wrong' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/401/);
  });

  it('reports a stopped workspace instead of hanging', async () => {
    await createWorkspace(server, 'ws-stopped');
    expect((await server.api('/api/workspaces/ws-stopped/stop', { method: 'POST' })).status).toBe(200);
    const res = await runWharf(home, ['ssh', 'ws-stopped', 'true']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/workspace "ws-stopped" is stopped; start it first/);
  });
});
