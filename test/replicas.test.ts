import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/workspace/index.ts';
import { DocClient, eventually, expectEverywhere } from './support/doc-client.ts';
import { itProcessOnly, testDriver } from './support/driver-matrix.ts';
import { ensureRunnerImage, makeFolder, requireEngine, RUNNER_IMAGE, type SeedEntry } from './support/images.ts';
import { startReplica, type Replica } from './support/replica.ts';
import { execOver, sshOverTunnel, sshThroughServer, type TestServer } from './support/server.ts';
import { PREVIEW_APP_SOURCE } from './support/preview-app.ts';
import { TerminalClient } from './support/terminal-client.ts';

/**
 * Two control-server processes on one data dir (docs/replicas.md): whatever a user does through
 * one replica, the other sees and can carry on with — documents, terminals, deploys, sessions,
 * share links, session keys, workspace lifecycle. Every check waits for a condition, with
 * generous deadlines: these machines are shared.
 */
const LONG = 60_000;

type Event = { type: string; text?: string; index?: number; status?: string; message?: string };

/** The helpers of ./support take a TestServer; they only use its url, token and api. */
const asServer = (replica: Replica) => replica as unknown as TestServer;

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = LONG): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function workspaceOn(replica: Replica, id: string): Promise<{ status: string } | undefined> {
  const res = await replica.api(`/api/workspaces/${id}`);
  return res.status === 200 ? ((await res.json()) as { status: string }) : undefined;
}

/** Follows a run's events websocket on `replica`; `onEvent` may act on each. */
function follow(replica: Replica, workspace: string, id: string, onEvent: (event: Event) => void = () => {}): { events: Event[]; closed: Promise<{ code: number }> } {
  const events: Event[] = [];
  const socket = new WebSocket(`${replica.url.replace(/^http/, 'ws')}/api/workspaces/${workspace}/deploys/${id}/events`, { headers: { authorization: `Bearer ${replica.token}` } });
  const closed = new Promise<{ code: number }>((resolve, reject) => {
    socket.on('message', (data) => {
      const event = JSON.parse(String(data)) as Event;
      events.push(event);
      onEvent(event);
    });
    socket.on('close', (code) => resolve({ code }));
    socket.on('error', reject);
  });
  return { events, closed };
}

/**
 * Agent processes of one workspace on this machine (process driver): their command lines name its
 * socket. On other drivers the agents are the driver's to count (test/driver-*.test.ts): undefined.
 */
/**
 * The agents of workspace `id` of this test's data dir: by the host key they were started with,
 * which lives in the data dir (other test files run beside this one, with workspaces of the same
 * names in data dirs of their own).
 */
function agentProcesses(dataDir: string, id: string): number[] | undefined {
  if (testDriver() !== 'process') return undefined;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((arg) => arg.endsWith('agent.cjs')) && cmdline.includes(join(dataDir, 'workspaces', id, 'agent', 'host_key'))) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('replicas: two control servers on one data dir', () => {
  let dataDir: string;
  let seeds: string;
  let a: Replica;
  let b: Replica;
  let marker: Server;
  let markerUrl: string;
  const hits: string[] = [];
  let ws: string;

  async function create(on: Replica, name: string, files?: Record<string, SeedEntry>): Promise<string> {
    const seed = files ? await makeFolder(files, await mkdtemp(join(seeds, `${name}-`))) : undefined;
    const res = await on.api('/api/workspaces', { method: 'POST', json: { name, ...(seed ? { seed } : {}) } });
    if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  beforeAll(async () => {
    const docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-replicas-'));
    seeds = await mkdtemp(join(tmpdir(), 'wharf-replicas-seeds-'));
    marker = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((r) => marker.listen(0, '127.0.0.1', r));
    markerUrl = `http://127.0.0.1:${(marker.address() as AddressInfo).port}`;
    const token = randomBytes(24).toString('hex');
    const argv = ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE];
    // Started together on an empty data dir: they must still end up with one signing key and one server key.
    [a, b] = await Promise.all([startReplica({ dataDir, token, argv }), startReplica({ dataDir, token, argv })]);
    ws = await create(a, 'shared', {
      'hello.txt': 'hello world\n',
      'okteto.yml': [
        'deploy:',
        '  remote: true',
        '  commands:',
        '    - name: waits',
        '      command: wget -q -O /dev/null "$MARKER/early-$RUN"; echo started; sleep 4; wget -q -O /dev/null "$MARKER/late-$RUN"; echo after',
        '    - echo never',
      ].join('\n'),
    });
  }, 180_000);

  afterAll(async () => {
    // Removed, not only stopped: the docker driver's containers and volumes would stay on the engine.
    if (b && ws) await b.api(`/api/workspaces/${ws}`, { method: 'DELETE' }).catch(() => undefined);
    await b?.stop();
    await a?.stop();
    marker?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (seeds) await rm(seeds, { recursive: true, force: true });
  }, 60_000);

  it('shares one signing key and one server key, and a workspace made on A is listed and used on B', async () => {
    const listed = (await (await b.api('/api/workspaces')).json()) as { workspaces: Array<{ id: string; status: string }> };
    expect(listed.workspaces.map((w) => w.id)).toContain(ws);
    await until('B to see the workspace running', async () => (await workspaceOn(b, ws))?.status === 'running');
    const read = await b.api(`/api/workspaces/${ws}/files/hello.txt`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('hello world\n');
    expect((await readFile(join(dataDir, 'signing.key'), 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/);
  }, LONG);

  it('a login session made on A is valid on B, and a logout on B ends it on A', async () => {
    const login = await fetch(`${a.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: a.token }) });
    expect(login.status).toBeLessThan(400);
    const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0]);
    const cookie = cookies.join('; ');
    const csrf = decodeURIComponent(cookies.find((c) => c.startsWith('wharf_csrf='))?.slice('wharf_csrf='.length) ?? '');
    expect(cookie).toContain('wharf_session=');
    const asUser = (on: Replica, path: string, init: RequestInit = {}) => fetch(`${on.url}${path}`, { ...init, headers: { cookie, ...(init.headers as Record<string, string>) } });
    expect((await asUser(b, '/api/workspaces')).status).toBe(200);
    expect((await asUser(b, '/api/logout', { method: 'POST', headers: { 'x-wharf-csrf': csrf } })).status).toBeLessThan(400);
    await until('A to refuse the logged-out session', async () => (await asUser(a, '/api/workspaces')).status === 401);
  }, LONG);

  it('editors on A and on B converge', async () => {
    const onA = await new DocClient(asServer(a), ws, 'hello.txt', 'ann').open();
    const onB = await new DocClient(asServer(b), ws, 'hello.txt', 'bob').open();
    try {
      await expectEverywhere('hello world\n', [onA, onB]);
      onA.text.insert(5, ',');
      onB.text.insert(onB.text.length - 1, '!');
      await expectEverywhere('hello, world!\n', [onA, onB]);
      await eventually(async () => expect(await (await b.api(`/api/workspaces/${ws}/files/hello.txt`)).text()).toBe('hello, world!\n'), 20_000);
    } finally {
      await onA.disconnect();
      await onB.disconnect();
    }
  }, LONG);

  it('a terminal opened through A is attached through B, and its share link made on A works on B until revoked', async () => {
    const made = await a.api(`/api/workspaces/${ws}/terminals`, { method: 'POST', json: {} });
    expect(made.status).toBe(201);
    const terminal = ((await made.json()) as { id: string }).id;
    const onA = await TerminalClient.open(asServer(a), ws, terminal);
    const onB = await TerminalClient.open(asServer(b), ws, terminal);
    try {
      onB.type('echo typed-$((40+2))-on-b\r');
      await onA.waitForText('typed-42-on-b', 30_000);
      await onB.waitForText('typed-42-on-b', 30_000);
      const listed = (await (await b.api(`/api/workspaces/${ws}/terminals`)).json()) as { terminals: Array<{ id: string }> };
      expect(listed.terminals.map((t) => t.id)).toContain(terminal);

      const shared = await a.api(`/api/workspaces/${ws}/terminals/${terminal}/shares`, { method: 'POST', json: { role: 'viewer', expiresInSeconds: 600 } });
      expect(shared.status).toBe(201);
      const link = (await shared.json()) as { id: string; token: string };
      const viewer = await TerminalClient.open(asServer(b), ws, terminal, { query: `share=${link.token}`, headers: {} });
      await viewer.waitForText('typed-42-on-b', 30_000);
      expect(viewer.closed).toBeUndefined();
      const revoked = await a.api(`/api/workspaces/${ws}/terminals/${terminal}/shares/${link.id}`, { method: 'DELETE' });
      expect(revoked.status).toBeLessThan(300);
      // Revoked on A: B closes the link's attach at its next check, and refuses new ones.
      await viewer.waitFor(() => viewer.closed !== undefined, 30_000, 'the revoked viewer to be closed by B');
      expect(await TerminalClient.refusal(asServer(b), ws, terminal, { query: `share=${link.token}` })).toBe(401);
    } finally {
      onA.ws.close();
      onB.ws.close();
    }
  }, LONG);

  it('a session key registered on A is listed on B, and revoking it on B closes its SSH session through A', async () => {
    const key = generateKeyPair('replica-test');
    const reg = await a.api(`/api/workspaces/${ws}/session-keys`, { method: 'POST', json: { publicKey: key.publicKey, ttlSeconds: 600, label: 'replica-test' } });
    expect(reg.status).toBe(201);
    const { id: keyId } = (await reg.json()) as { id: string };
    const client = await sshOverTunnel(asServer(a), ws, key.privateKey);
    const ended = new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect((await execOver(client, 'echo through-a')).stdout).toBe('through-a\n');
    const listed = (await (await b.api(`/api/workspaces/${ws}/session-keys`)).json()) as { keys: Array<{ id: string }> };
    expect(listed.keys.map((k) => k.id)).toContain(keyId);
    expect((await b.api(`/api/workspaces/${ws}/session-keys/${keyId}`, { method: 'DELETE' })).status).toBeLessThan(300);
    await ended;
  }, LONG);

  // The preview app runs with this machine's node: the process driver (no sandbox) only.
  itProcessOnly('a port of a dev server started through A is previewed through B, and its share link made on A opens on B', async () => {
    expect((await a.api(`/api/workspaces/${ws}/files/preview-app.cjs`, { method: 'PUT', body: PREVIEW_APP_SOURCE })).status).toBeLessThan(300);
    const client = await sshThroughServer(asServer(a), ws);
    try {
      const port = await new Promise<number>((resolve, reject) => {
        client.exec(`exec ${JSON.stringify(process.execPath)} preview-app.cjs`, (err, channel) => {
          if (err) return reject(err);
          let out = '';
          channel.on('data', (d: Buffer) => {
            out += d;
            const match = /listening (\d+)/.exec(out);
            if (match) resolve(Number(match[1]));
          });
          channel.stderr.on('data', () => {});
        });
      });
      await until('B to list the port', async () => {
        const listed = (await (await b.api(`/api/workspaces/${ws}/ports`)).json()) as { ports: Array<{ port: number }> };
        return listed.ports.some((p) => p.port === port);
      });
      const headers = await b.api(`/api/workspaces/${ws}/ports/${port}/headers`);
      expect(headers.status).toBe(200);
      expect(((await headers.json()) as Record<string, string>)['x-forwarded-prefix']).toBe(`/api/workspaces/${ws}/ports/${port}`);
      const made = await a.api(`/api/workspaces/${ws}/port-shares`, { method: 'POST', json: { port, public: true, expiresInSeconds: 600 } });
      expect(made.status).toBe(201);
      const { token } = (await made.json()) as { token: string };
      const opened = await fetch(`${b.url}/p/${token}`, { redirect: 'manual' });
      expect(opened.status, await opened.clone().text()).toBeLessThan(400);
      const cookie = opened.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const location = new URL(opened.headers.get('location') ?? '/', b.url);
      const page = await fetch(location, { headers: { cookie } });
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('hello from the workspace');
    } finally {
      client.end();
    }
  }, LONG);

  it('a workspace stopped on B is stopped for A (and its agent gone), started on A is running for B', async () => {
    const id = await create(a, 'lifecycle');
    await until('B to see it running', async () => (await workspaceOn(b, id))?.status === 'running');
    expect((await b.api(`/api/workspaces/${id}/stop`, { method: 'POST' })).status).toBe(200);
    await until('A to see it stopped', async () => (await workspaceOn(a, id))?.status === 'stopped');
    expect(agentProcesses(dataDir, id) ?? []).toEqual([]);
    expect((await a.api(`/api/workspaces/${id}/start`, { method: 'POST' })).status).toBe(200);
    await until('B to see it running again', async () => (await workspaceOn(b, id))?.status === 'running');
    expect(agentProcesses(dataDir, id) ?? [0]).toHaveLength(1);
    expect((await b.api(`/api/workspaces/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    await until('A to see it gone', async () => (await a.api(`/api/workspaces/${id}`)).status === 404);
    expect(agentProcesses(dataDir, id) ?? []).toEqual([]);
  }, LONG);

  itProcessOnly('an agent that crashes is restarted once, by one of the replicas, and both use the new one', async () => {
    const meta = () => JSON.parse(readFileSync(join(dataDir, 'workspaces', ws, 'workspace.json'), 'utf8')) as { agentPid?: number };
    const before = agentProcesses(dataDir, ws) ?? [];
    expect(before).toHaveLength(1);
    process.kill(before[0], 'SIGKILL');
    const restarted = await until('a new agent', async () => {
      const pid = meta().agentPid;
      return pid && pid !== before[0] && agentProcesses(dataDir, ws)?.includes(pid) ? pid : undefined;
    });
    for (const replica of [a, b]) {
      await until('both replicas to reach it', async () => (await replica.api(`/api/workspaces/${ws}/files/hello.txt`)).status === 200);
    }
    expect(agentProcesses(dataDir, ws)).toEqual([restarted]);
  }, LONG);

  it('a deploy started on A is followed, refused a second time and cancelled from B', async () => {
    const started = await a.api(`/api/workspaces/${ws}/deploys`, { method: 'POST', json: { variables: { MARKER: markerUrl, RUN: 'cancel' } } });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    let cancelled: Promise<Response> | undefined;
    const watched = follow(b, ws, id, (event) => {
      if (event.type === 'output' && event.text === 'started\n') cancelled = b.api(`/api/workspaces/${ws}/deploys/${id}`, { method: 'DELETE' });
    });
    const onA = follow(a, ws, id);
    await until('the run to be running on B', async () => ((await (await b.api(`/api/workspaces/${ws}/deploys/${id}`)).json()) as { status: string }).status === 'running');
    const second = await b.api(`/api/workspaces/${ws}/deploys`, { method: 'POST', json: {} });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { details?: { id?: string } } }).error.details?.id).toBe(id);

    expect((await watched.closed).code).toBe(1000);
    expect(cancelled).toBeDefined();
    const answer = await (cancelled as Promise<Response>);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ id, status: 'cancelled', message: 'the run was cancelled' });
    expect(watched.events.at(-1)).toMatchObject({ type: 'done', status: 'cancelled' });
    expect(watched.events.some((e) => e.type === 'plan')).toBe(true);
    await onA.closed;
    expect(onA.events.at(-1)).toMatchObject({ type: 'done', status: 'cancelled' });
    for (const replica of [a, b]) {
      const history = (await (await replica.api(`/api/workspaces/${ws}/deploys`)).json()) as { deploys: Array<{ id: string; status: string }> };
      expect(history.deploys.find((r) => r.id === id)).toMatchObject({ status: 'cancelled' });
    }
    // The runner's command was stopped: its call after the pause never comes (it would within ~4 s).
    await expect(until('a late call', async () => hits.includes('/late-cancel'), 10_000)).rejects.toThrow(/timed out/);
    expect(hits).toContain('/early-cancel');
  }, 120_000);

  it('a replica that stops cleanly leaves the agents to the others', async () => {
    const c = await startReplica({ dataDir, token: a.token, argv: ['--builder', requireEngine('docker').endpoint, '--runner-image', RUNNER_IMAGE] });
    await until('C to reach the workspace', async () => (await c.api(`/api/workspaces/${ws}/files/hello.txt`)).status === 200);
    const before = agentProcesses(dataDir, ws);
    expect(await c.stop()).toBe(0);
    expect(agentProcesses(dataDir, ws)).toEqual(before);
    expect((await b.api(`/api/workspaces/${ws}/files/hello.txt`)).status).toBe(200);
  }, LONG);

  it('a replica that dies mid-deploy does not leave the run silently running: B reports it interrupted, and a new run can start', async () => {
    const started = await a.api(`/api/workspaces/${ws}/deploys`, { method: 'POST', json: { variables: { MARKER: markerUrl, RUN: 'killed' } } });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    let killing: Promise<void> | undefined;
    const watched = follow(b, ws, id, (event) => {
      if (event.type === 'output' && event.text === 'started\n') killing = a.kill();
    });
    expect((await watched.closed).code).toBe(1000);
    expect(killing).toBeDefined();
    await killing;
    expect(watched.events.at(-1)).toMatchObject({ type: 'done', status: 'error' });
    expect(watched.events.at(-1)?.message).toMatch(/interrupted: the server replica running it .* went away/);
    const run = (await (await b.api(`/api/workspaces/${ws}/deploys/${id}`)).json()) as { status: string };
    expect(run.status).toBe('error');
    const history = (await (await b.api(`/api/workspaces/${ws}/deploys`)).json()) as { deploys: Array<{ id: string; status: string }> };
    expect(history.deploys.find((r) => r.id === id)).toMatchObject({ status: 'error' });
    // The builder dropped the build with its client: the runner's later call never comes.
    await expect(until('a late call', async () => hits.includes('/late-killed'), 10_000)).rejects.toThrow(/timed out/);
    // B, alone now, still serves the workspace and takes the next run.
    const next = await b.api(`/api/workspaces/${ws}/deploys`, { method: 'POST', json: { variables: { MARKER: markerUrl, RUN: 'after' } } });
    expect(next.status).toBe(202);
    const { id: nextId } = (await next.json()) as { id: string };
    let cancelling: Promise<Response> | undefined;
    const after = follow(b, ws, nextId, (event) => {
      if (event.type === 'output' && event.text === 'started\n') cancelling = b.api(`/api/workspaces/${ws}/deploys/${nextId}`, { method: 'DELETE' });
    });
    await after.closed;
    expect(after.events.at(-1)).toMatchObject({ type: 'done', status: 'cancelled' });
    expect((await (cancelling as Promise<Response>)).status).toBe(200);
  }, 120_000);
});
