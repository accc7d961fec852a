/**
 * Preview (issue 18): a dev server inside a workspace, reached through wharf's preview gateway,
 * beside the same server reached directly and beside another reverse proxy in front of it, all in
 * the same run, in interleaved rounds, with the same client:
 *
 * - wharf, path form: `/api/workspaces/bench/ports/<port>/` on a control server started as
 *   `npm start` starts it (process driver), authenticated with the bearer token on every request;
 *   the data path is client ⇄ control server ⇄ unix socket ⇄ agent (ssh2 direct-tcpip) ⇄ app;
 * - wharf, host form: `<port>--bench.<preview-domain>` (the Host header names it), the same path;
 * - code-server's `/proxy/<port>/` (the npm `code-server` package, `--auth none`, so it checks
 *   nothing per request while wharf does), when it installs here: bench/peers-code-server, once;
 * - a plain `http-proxy` reverse proxy (the library most Node dev proxies are built on): one hop
 *   with no protocol in between;
 * - direct: the client straight to the app.
 *
 * Figures: requests per second and p50/p99 latency of a small page with 10 keep-alive
 * connections (autocannon), and MB/s of a 100 MB download and a 100 MB upload on one connection.
 * Everything runs on the same machine as the client, so the load average is part of every figure.
 *
 * Run alone: `npx tsx bench/preview.bench.ts`, or with the others: `npm run bench -- preview`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { importPreviewPeers, locateCodeServer } from './peers.ts';
import { delay, freePort, runWhenMain, spawnTypeScript, stopChild, waitForOutput, SERVER_ENV } from './support.ts';
import type { BenchRow } from './types.ts';

const ROUNDS = 3;
const LOAD_SECONDS = 5;
const CONNECTIONS = 10;
const BULK_BYTES = 100 * 2 ** 20;
const DOMAIN = 'preview.bench';

/** The dev server: a 1 KB page, a 100 MB download, an upload sink. Plain Node, as a workspace has. */
const APP_SOURCE = String.raw`
const http = require('node:http');
const page = '<!doctype html><title>bench</title>' + 'x'.repeat(1000);
const chunk = Buffer.alloc(256 * 1024, 7);
const server = http.createServer((req, res) => {
  if (req.url === '/big') {
    const total = Number(process.env.BULK_BYTES);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    let sent = 0;
    const more = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', more);
      }
      res.end();
    };
    return more();
  }
  if (req.url === '/upload') {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => res.end(String(bytes)));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(page);
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

type Target = { name: string; base: string; headers: Record<string, string> };
type LoadResult = { rps: number; p50: number; p99: number };
type Figures = { load: LoadResult[]; download: number[]; upload: number[] };

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** One request on a keep-alive agent, its body drained (or `body` sent); resolves with the bytes read. */
function transfer(target: Target, path: string, agent: Agent, body?: Buffer, repeat = 0): Promise<number> {
  const url = new URL(path, target.base);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body ? 'POST' : 'GET', agent, headers: { ...target.headers, ...(body ? { 'content-length': String(body.length * (repeat + 1)) } : {}) } }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${target.name}: ${path} answered ${res.statusCode}`));
      }
      let bytes = 0;
      let text = '';
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        if (body) text += d;
      });
      res.on('end', () => resolve(body ? Number(text) : bytes));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) return req.end();
    // The upload is the same buffer sent `repeat + 1` times, honouring back-pressure.
    let left = repeat + 1;
    const more = () => {
      while (left > 0) {
        left -= 1;
        if (!req.write(body)) return req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

async function measureBulk(target: Target): Promise<{ download: number; upload: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    let started = performance.now();
    const got = await transfer(target, 'big', agent);
    if (got !== BULK_BYTES) throw new Error(`${target.name}: the download brought ${got} of ${BULK_BYTES} bytes`);
    const download = BULK_BYTES / 1e6 / ((performance.now() - started) / 1000);
    const piece = Buffer.alloc(256 * 1024, 3);
    started = performance.now();
    const counted = await transfer(target, 'upload', agent, piece, BULK_BYTES / piece.length - 1);
    if (counted !== BULK_BYTES) throw new Error(`${target.name}: the app received ${counted} of ${BULK_BYTES} uploaded bytes`);
    const upload = BULK_BYTES / 1e6 / ((performance.now() - started) / 1000);
    return { download, upload };
  } finally {
    agent.destroy();
  }
}

async function measureLoad(target: Target): Promise<LoadResult> {
  const { autocannon } = await importPreviewPeers();
  const result = await autocannon({ url: target.base, connections: CONNECTIONS, duration: LOAD_SECONDS, headers: target.headers });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${target.name}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

type Running = { stop(): Promise<void> };

/** wharf with one workspace, `bench`, previews by path and under DOMAIN by host. */
async function startWharf(): Promise<Running & { url: string; token: string; filesDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-bench-preview-'));
  const token = randomBytes(16).toString('hex');
  const child = spawnTypeScript('server/serve.ts', ['--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--token', token, '--sandbox', 'none', '--log-level', 'warn', '--preview-domain', DOMAIN], SERVER_ENV);
  const stop = async () => {
    await stopChild(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const [, url] = await waitForOutput(child, /wharf is running at (http:\/\/\S+)/, 'wharf');
    const res = await fetch(`${url}/api/workspaces`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench' }) });
    if (res.status !== 201) throw new Error(`create workspace: ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    return { url, token, filesDir: join(dataDir, 'workspaces', id, 'files'), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The app, run with its working directory in the workspace: that makes it the workspace's process. */
async function startApp(filesDir: string): Promise<Running & { port: number }> {
  await writeFile(join(filesDir, 'bench-app.cjs'), APP_SOURCE);
  const child = spawn(process.execPath, ['bench-app.cjs'], { cwd: filesDir, env: { ...process.env, BULK_BYTES: String(BULK_BYTES) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const [, port] = await waitForOutput(child, /listening (\d+)/, 'the preview app');
  return { port: Number(port), stop: () => stopChild(child) };
}

/** A plain http-proxy in front of the app, in its own process as a dev proxy would be. */
async function startHttpProxy(appPort: number): Promise<Running & { port: number }> {
  const port = await freePort();
  const { httpProxyEntry } = await importPreviewPeers();
  const source = `const { createProxyServer } = require(${JSON.stringify(httpProxyEntry)});
const proxy = createProxyServer({ target: 'http://127.0.0.1:${appPort}', agent: new (require('node:http').Agent)({ keepAlive: true, maxSockets: 256 }) });
proxy.on('error', (err, req, res) => { res.writeHead(502); res.end(String(err)); });
require('node:http').createServer((req, res) => proxy.web(req, res)).listen(${port}, '127.0.0.1', () => console.log('proxy listening'));`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(child, /proxy listening/, 'http-proxy');
  return { port, stop: () => stopChild(child) };
}

/** code-server with its built-in port proxy, or undefined when it could not be installed here. */
async function startCodeServer(): Promise<(Running & { port: number; version: string }) | undefined> {
  const found = await locateCodeServer();
  if (!found) return undefined;
  const port = await freePort();
  const home = await mkdtemp(join(tmpdir(), 'wharf-bench-code-server-'));
  const child: ChildProcess = spawn(process.execPath, [found.entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--user-data-dir', join(home, 'data'), '--extensions-dir', join(home, 'ext'), home], {
    env: { ...process.env, HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForOutput(child, /HTTP server listening/, 'code-server');
  return {
    port,
    version: found.version,
    stop: async () => {
      await stopChild(child);
      await rm(home, { recursive: true, force: true });
    },
  };
}

export async function run(): Promise<BenchRow[]> {
  const started: Running[] = [];
  try {
    const wharf = await startWharf();
    started.push(wharf);
    const app = await startApp(wharf.filesDir);
    started.push(app);
    const bearer = { authorization: `Bearer ${wharf.token}` };
    const serverPort = new URL(wharf.url).port;
    const targets: Target[] = [
      { name: 'wharf (path)', base: `${wharf.url}/api/workspaces/bench/ports/${app.port}/`, headers: bearer },
      { name: 'wharf (host)', base: `${wharf.url}/`, headers: { ...bearer, host: `${app.port}--bench.${DOMAIN}:${serverPort}` } },
      { name: 'direct', base: `http://127.0.0.1:${app.port}/`, headers: {} },
    ];
    const proxy = await startHttpProxy(app.port);
    started.push(proxy);
    const httpProxyName = 'http-proxy 1.18 (one hop, no protocol)';
    targets.push({ name: httpProxyName, base: `http://127.0.0.1:${proxy.port}/`, headers: {} });
    const codeServer = await startCodeServer().catch((err: Error) => {
      process.stderr.write(`bench: code-server did not start, measured without it: ${err.message}\n`);
      return undefined;
    });
    const codeServerName = codeServer && `code-server ${codeServer.version} /proxy/ (--auth none)`;
    if (codeServer) {
      started.push(codeServer);
      targets.push({ name: codeServerName!, base: `http://127.0.0.1:${codeServer.port}/proxy/${app.port}/`, headers: {} });
    }
    // Every path must serve the page before anything is timed (the agent's port list included).
    for (const target of targets) {
      await waitUntil(`${target.name} to serve the page`, async () => (await transfer(target, '', new Agent())) > 1000);
    }
    const figures = new Map<string, Figures>(targets.map((t) => [t.name, { load: [], download: [], upload: [] }]));
    const loadAtStart = loadavg()[0];
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const f = figures.get(target.name)!;
        f.load.push(await measureLoad(target));
        const bulk = await measureBulk(target);
        f.download.push(bulk.download);
        f.upload.push(bulk.upload);
      }
    }
    const summary = (name: string) => {
      const f = figures.get(name)!;
      return { rps: median(f.load.map((l) => l.rps)), p50: median(f.load.map((l) => l.p50)), p99: median(f.load.map((l) => l.p99)), download: median(f.download), upload: median(f.upload) };
    };
    const load = `load ${loadAtStart.toFixed(1)}`;
    const page = `1 KB page, ${CONNECTIONS} keep-alive connections, ${LOAD_SECONDS} s × ${ROUNDS} rounds (${load})`;
    const bulkScenario = (what: string) => `100 MB ${what}, one connection, median of ${ROUNDS} (${load})`;
    const peers = [codeServerName, httpProxyName, 'direct'].filter((p): p is string => p !== undefined);
    const goalPeer = codeServerName ?? httpProxyName;
    const rows: BenchRow[] = [];
    for (const form of ['wharf (path)', 'wharf (host)']) {
      const w = summary(form);
      for (const peer of peers) {
        const p = summary(peer);
        const isGoal = peer === goalPeer;
        rows.push({ scenario: `${page}: ${form}`, metric: 'requests/s', wharf: w.rps.toFixed(0), peerName: peer, peer: p.rps.toFixed(0), goal: isGoal ? `≥ ${p.rps.toFixed(0)} (the peer proxy)` : undefined });
        rows.push({ scenario: `${page}: ${form}`, metric: 'latency p50 / p99 (ms)', wharf: `${w.p50} / ${w.p99}`, peerName: peer, peer: `${p.p50} / ${p.p99}` });
      }
      for (const peer of peers) {
        const p = summary(peer);
        rows.push({ scenario: `${bulkScenario('download')}: ${form}`, metric: 'MB/s', wharf: w.download.toFixed(0), peerName: peer, peer: p.download.toFixed(0) });
        rows.push({ scenario: `${bulkScenario('upload')}: ${form}`, metric: 'MB/s', wharf: w.upload.toFixed(0), peerName: peer, peer: p.upload.toFixed(0) });
      }
    }
    return rows;
  } finally {
    for (const running of started.reverse()) await running.stop().catch(() => {});
  }
}

runWhenMain(import.meta.url, run);
