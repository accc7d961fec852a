/**
 * Shared terminals: output throughput to one and to ten attached clients, and keystroke echo
 * latency, for wharf (client ⇄ control server ⇄ SSH ⇄ agent ⇄ pty) beside wetty 3.2.0 (a Node
 * web terminal: socket.io ⇄ server ⇄ pty, one hop) and beside a raw in-process node-pty read,
 * the physical reference: no terminal can deliver more than the pty gives. All measured in the
 * same run, on the same machine; both servers are separate processes, the clients live here.
 *
 * wetty cannot attach two clients to one pty: each connection starts its own process. Its
 * "ten clients" figure is therefore ten sessions side by side, each running the command.
 *
 * Run alone: `npx tsx bench/terminal.bench.ts`, or with the others: `npm run bench -- terminal`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from 'node-pty';
import WebSocket from 'ws';
import { importPeers, locatePeerFile, type PeerSocket } from './peers.ts';
import type { BenchRow } from './types.ts';
import { delay, freePort, runWhenMain, spawnTypeScript, startWharfProcess, stopChild, waitForOutput, type WharfProcess } from './support.ts';

const OUTPUT = 'head -c 50000000 /dev/zero | base64 -w 100';
const MARKER = 'END-OF-STREAM';
/** After `read go`, so every client is attached before the first byte. */
const THROUGHPUT_SCRIPT = `read go; ${OUTPUT}; echo ${MARKER}; read x`;
const ECHO_SCRIPT = 'stty raw -echo; cat';
const ROUNDS = 3;
const ECHO_SAMPLES = 500;
/**
 * Keys typed before each measured set, in every contender. V8 compiles the code on a keystroke's
 * path function by function as it gets hot, on helper threads that compete with the processes for
 * the two cores: on wharf's three processes that goes on for about 3,000 keys, and while it does,
 * echo p99 is 3-4 ms (the compiler threads showed 20-60 ms of CPU per 500 keys); once they are
 * quiet it is 1.0-1.7 ms. So two sets are measured: the first 500 keys after 1,000 (cold, the
 * earlier definition) and 500 after 5,000 (warm, a server that has been used; as the edit-latency
 * benchmark warms up with 5,000 edits). Before each set, a moment of quiet, so the warm-up's own
 * aftermath is not measured.
 */
const ECHO_COLD_AFTER = 1000;
const ECHO_WARM_AFTER = 5000;
const ECHO_QUIET_MS = 100;
const CLIENTS = 10;
const WETTY = 'wetty 3.2.0';
const RAW = 'raw node-pty read (in-process)';
const BARE = 'bare ssh2 + ws relay (two processes, nothing else)';
const MEASUREMENT_TIMEOUT_MS = 120_000;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** Notices the end marker even when it is split across two chunks, without scanning everything. */
function watchForMarker() {
  let tail = '';
  return (chunk: string) => {
    const text = tail + chunk.slice(-64);
    tail = chunk.slice(-32);
    return text.includes(MARKER);
  };
}

// ---------------------------------------------------------------------------------- raw node-pty

function rawThroughput(): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    let bytes = 0;
    const seen = watchForMarker();
    const term = pty.spawn('/bin/sh', ['-c', `${OUTPUT}; echo ${MARKER}; read x`], { cols: 100, rows: 30, encoding: null });
    term.onData((chunk) => {
      const data = chunk as unknown as Buffer;
      bytes += data.length;
      if (seen(data.toString('latin1'))) {
        resolve(mbps(bytes, performance.now() - started));
        term.kill();
      }
    });
  });
}

async function rawEcho(): Promise<EchoSamples> {
  const term = pty.spawn('/bin/sh', ['-c', ECHO_SCRIPT], { cols: 100, rows: 30, encoding: null });
  let pending: ((data: Buffer) => void) | undefined;
  term.onData((chunk) => pending?.(chunk as unknown as Buffer));
  await delay(300);
  const samples = await measureEcho((key) => term.write(key), (handler) => (pending = handler));
  term.kill();
  return samples;
}

type EchoSamples = { cold: number[]; warm: number[] };

/** Types one key at a time and times its echo: a cold and a warm set (see ECHO_COLD_AFTER). */
async function measureEcho(send: (key: string) => void, onOutput: (handler: (data: Buffer | string) => void) => void): Promise<EchoSamples> {
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < ECHO_WARM_AFTER + ECHO_SAMPLES; i++) {
    if (i === ECHO_COLD_AFTER || i === ECHO_WARM_AFTER) await delay(ECHO_QUIET_MS);
    const key = String.fromCharCode(97 + (i % 26));
    const echoed = new Promise<void>((resolve) => onOutput((data) => (data.includes(key) ? resolve() : undefined)));
    const started = performance.now();
    send(key);
    await echoed;
    const took = performance.now() - started;
    if (i >= ECHO_COLD_AFTER && i < ECHO_COLD_AFTER + ECHO_SAMPLES) cold.push(took);
    if (i >= ECHO_WARM_AFTER) warm.push(took);
  }
  return { cold, warm };
}

// ----------------------------------------------------------------------------------------- wharf

async function createTerminal(wharf: WharfProcess, script: string): Promise<string> {
  const res = await fetch(`${wharf.url}/api/workspaces/bench/terminals`, {
    method: 'POST',
    headers: { authorization: `Bearer ${wharf.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command: 'sh', args: ['-c', script], cols: 100, rows: 30 }),
  });
  if (res.status !== 201) throw new Error(`create terminal: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function attach(wharf: WharfProcess, id: string): Promise<WebSocket> {
  const ws = new WebSocket(`${wharf.url.replace('http', 'ws')}/api/workspaces/bench/terminals/${id}/attach?cols=100&rows=30`, {
    headers: { authorization: `Bearer ${wharf.token}` },
    perMessageDeflate: false,
  });
  // Ready once the snapshot has arrived.
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Gives up on a measurement that hangs instead of hanging the whole run. */
function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${MEASUREMENT_TIMEOUT_MS / 1000} s`)), MEASUREMENT_TIMEOUT_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** What a client's listener reports to `timeOutput`. */
type OutputTracker = {
  /** A chunk of `bytes` bytes arrived; `tail` is its last characters, where the end marker shows. */
  chunk(bytes: number, tail: string): void;
  /** The end arrived some other way (inside a resync). */
  end(): void;
};

/**
 * Times the output to several clients from `start()` until each has seen the end marker. The
 * slowest client sets the figure (one that was resynced counts only the bytes it got).
 */
async function timeOutput(clients: number, listen: (client: number, tracker: OutputTracker) => void, start: () => void, what: string): Promise<number> {
  const results = Array.from({ length: clients }, (_, client) => {
    const seen = watchForMarker();
    let bytes = 0;
    return new Promise<{ bytes: number; at: number }>((resolve) => {
      listen(client, {
        chunk(n, tail) {
          bytes += n;
          if (seen(tail)) resolve({ bytes, at: performance.now() });
        },
        end: () => resolve({ bytes, at: performance.now() }),
      });
    });
  });
  const started = performance.now();
  start();
  const done = await withDeadline(Promise.all(results), what);
  return Math.min(...done.map((d) => mbps(d.bytes, d.at - started)));
}

const tailOf = (data: Buffer) => data.toString('latin1', Math.max(0, data.length - 64));

type Delivery = { mbps: number; resyncs: number };

async function wharfThroughput(wharf: WharfProcess, clients: number): Promise<Delivery> {
  const id = await createTerminal(wharf, THROUGHPUT_SCRIPT);
  const sockets = await Promise.all(Array.from({ length: clients }, () => attach(wharf, id)));
  let resyncs = 0;
  try {
    const listen = (client: number, tracker: OutputTracker) =>
      sockets[client].on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return tracker.chunk(data.length, tailOf(data));
        // A client that fell behind is resynced: the end may then come inside the snapshot.
        const message = JSON.parse(data.toString('utf8')) as { type: string; data?: string };
        if (message.type !== 'resync') return;
        resyncs++;
        if (message.data?.includes(MARKER)) tracker.end();
      });
    const start = () => sockets[0].send(Buffer.from('\r'), { binary: true });
    return { mbps: await timeOutput(clients, listen, start, `wharf output to ${clients} clients`), resyncs };
  } finally {
    for (const ws of sockets) ws.close();
    await fetch(`${wharf.url}/api/workspaces/bench/terminals/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${wharf.token}` } });
  }
}

async function wharfEcho(wharf: WharfProcess): Promise<EchoSamples> {
  const id = await createTerminal(wharf, ECHO_SCRIPT);
  const ws = await attach(wharf, id);
  let pending: ((data: Buffer) => void) | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) pending?.(data);
  });
  await delay(300);
  const samples = await measureEcho((key) => ws.send(Buffer.from(key), { binary: true }), (handler) => (pending = handler));
  ws.close();
  await fetch(`${wharf.url}/api/workspaces/bench/terminals/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${wharf.token}` } });
  return samples;
}

// ------------------------------------------------------------------------------------ bare relay

type BareRelay = { port: number; stop(): Promise<void> };

/** wharf's transport without wharf (bench/bare-relay.ts): the ceiling of this architecture here. */
async function startBareRelay(): Promise<BareRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-bare-'));
  const socketPath = join(dir, 'agent.sock');
  const start = (...args: string[]) => spawnTypeScript('bench/bare-relay.ts', args);
  const agent = start('agent', socketPath, THROUGHPUT_SCRIPT);
  const children = [agent];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForOutput(agent, /bare agent ready/, 'bare relay agent');
    const server = start('server', socketPath);
    children.push(server);
    const [, port] = await waitForOutput(server, /bare relay listening on (\d+)/, 'bare relay server');
    return { port: Number(port), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

let bareGroups = 0;

async function bareThroughput(relay: BareRelay, clients: number): Promise<number> {
  const group = `g${++bareGroups}`;
  const sockets = Array.from({ length: clients }, () => new WebSocket(`ws://127.0.0.1:${relay.port}/${group}/${clients}`, { perMessageDeflate: false }));
  await Promise.all(sockets.map((ws) => new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))));
  // The relay opens the pty once the last client is in; give it the time wharf's clients get.
  await delay(300);
  try {
    const listen = (client: number, tracker: OutputTracker) => sockets[client].on('message', (data: Buffer) => tracker.chunk(data.length, tailOf(data)));
    const start = () => sockets[0].send(Buffer.from('\r'), { binary: true });
    return await timeOutput(clients, listen, start, `bare relay output to ${clients} clients`);
  } finally {
    for (const ws of sockets) ws.close();
  }
}

// ----------------------------------------------------------------------------------------- wetty

type Wetty = { port: number; stop(): Promise<void> };

async function startWetty(script: string): Promise<Wetty> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [await locatePeerFile('wetty/build/main.js'), '--host', '127.0.0.1', '--port', String(port), '--base', '/wetty', '--command', `sh -c '${script}'`, '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitForOutput(child, /Server started/, 'wetty');
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** A wetty session the way its browser client drives it: `input` out, `data` in, `commit` acks. */
async function wettySession(wetty: Wetty): Promise<PeerSocket> {
  const { io } = await importPeers();
  const socket = io(`http://127.0.0.1:${wetty.port}`, { path: '/wetty/socket.io', transports: ['websocket'], forceNew: true });
  let unacked = 0;
  socket.on('data', (data: string) => {
    unacked += data.length;
    if (unacked >= 262_144) {
      socket.emit('commit', unacked);
      unacked = 0;
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('login', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

async function wettyThroughput(wetty: Wetty, clients: number): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: clients }, () => wettySession(wetty)));
  await delay(200);
  try {
    const listen = (client: number, tracker: OutputTracker) => sockets[client].on('data', (data: string) => tracker.chunk(data.length, data.slice(-64)));
    const start = () => {
      for (const socket of sockets) socket.emit('input', '\r');
    };
    return await timeOutput(clients, listen, start, `wetty output to ${clients} clients`);
  } finally {
    for (const socket of sockets) socket.close();
  }
}

async function wettyEcho(wetty: Wetty): Promise<EchoSamples> {
  const socket = await wettySession(wetty);
  let pending: ((data: string) => void) | undefined;
  socket.on('data', (data: string) => pending?.(data));
  await delay(300);
  const samples = await measureEcho((key) => socket.emit('input', key), (handler) => (pending = handler));
  socket.close();
  return samples;
}

// ------------------------------------------------------------------------------------------- run

export async function run(): Promise<BenchRow[]> {
  // Four busy processes share the cores: other work on the machine weighs on wharf more than on
  // the one-process raw read, so the load is part of the result.
  const load = loadavg()[0].toFixed(1);
  const wharf = await startWharfProcess('wharf-bench-term-');
  const wettyOutput = await startWetty(THROUGHPUT_SCRIPT);
  const wettyEchoServer = await startWetty(ECHO_SCRIPT);
  const bare = await startBareRelay();
  try {
    // Interleaved rounds, so a slow moment of the machine hits every contender alike.
    const raw: number[] = [];
    const one: number[] = [];
    const wettyOne: number[] = [];
    const ten: number[] = [];
    const wettyTen: number[] = [];
    const bareOne: number[] = [];
    const bareTen: number[] = [];
    let resyncs = 0;
    const wharfRun = async (clients: number) => {
      const result = await wharfThroughput(wharf, clients);
      resyncs += result.resyncs;
      return result.mbps;
    };
    await wharfThroughput(wharf, 1);
    for (let round = 0; round < ROUNDS; round++) {
      raw.push(await rawThroughput());
      one.push(await wharfRun(1));
      wettyOne.push(await wettyThroughput(wettyOutput, 1));
      bareOne.push(await bareThroughput(bare, 1));
      ten.push(await wharfRun(CLIENTS));
      wettyTen.push(await wettyThroughput(wettyOutput, CLIENTS));
      bareTen.push(await bareThroughput(bare, CLIENTS));
      raw.push(await rawThroughput());
    }
    const rawEchoSamples = await rawEcho();
    const wharfEchoSamples = await wharfEcho(wharf);
    const wettyEchoSamples = await wettyEcho(wettyEchoServer);

    const rawMbps = median(raw);
    const f = (n: number) => n.toFixed(1);
    const share = (n: number) => `${f(n)} (${Math.round((100 * n) / rawMbps)}% of raw)`;
    // A client that could not keep up was resynced (it skipped output): say so beside the numbers.
    const resynced = resyncs ? `; ${resyncs} resync${resyncs === 1 ? '' : 's'} of a slow client during the run` : '';
    const ms = (n: number) => n.toFixed(2);
    const p50p99 = (samples: number[]) => `${ms(percentile(samples, 50))} / ${ms(percentile(samples, 99))}`;
    const scenarioEcho = (set: string) => `keystroke echo, \`${ECHO_SCRIPT}\`, ${ECHO_SAMPLES} keys ${set}`;
    const warm = scenarioEcho(`after ${ECHO_WARM_AFTER} warm-up keys`);
    const cold = scenarioEcho(`after ${ECHO_COLD_AFTER} (cold: V8 still compiling)`);
    const scenarioOut = `output of \`${OUTPUT}\` (load average ${load} at the start)`;
    return [
      { scenario: `${scenarioOut}, 1 client`, metric: 'throughput (MB/s, median of 3)', wharf: share(median(one)), peerName: RAW, peer: f(rawMbps), goal: '≥ 90% of raw' },
      { scenario: `${scenarioOut}, 1 client`, metric: 'throughput (MB/s, median of 3)', wharf: share(median(one)), peerName: BARE, peer: share(median(bareOne)) },
      { scenario: `${scenarioOut}, 1 client`, metric: 'throughput (MB/s, median of 3)', wharf: f(median(one)), peerName: WETTY, peer: f(median(wettyOne)) },
      { scenario: `${scenarioOut}, ${CLIENTS} clients on one pty`, metric: `throughput per client, slowest (MB/s)${resynced}`, wharf: share(median(ten)), peerName: RAW, peer: f(rawMbps), goal: '≥ 80% of raw' },
      { scenario: `${scenarioOut}, ${CLIENTS} clients on one pty`, metric: 'throughput per client, slowest (MB/s)', wharf: share(median(ten)), peerName: BARE, peer: share(median(bareTen)) },
      {
        scenario: `${scenarioOut}, ${CLIENTS} clients`,
        metric: 'throughput per client, slowest (MB/s)',
        wharf: f(median(ten)),
        peerName: `${WETTY} (${CLIENTS} separate ptys: it cannot share one)`,
        peer: f(median(wettyTen)),
      },
      { scenario: warm, metric: 'p50 latency (ms)', wharf: ms(percentile(wharfEchoSamples.warm, 50)), peerName: RAW, peer: ms(percentile(rawEchoSamples.warm, 50)), goal: '< 0.5 ms' },
      { scenario: warm, metric: 'p50 latency (ms)', wharf: ms(percentile(wharfEchoSamples.warm, 50)), peerName: WETTY, peer: ms(percentile(wettyEchoSamples.warm, 50)) },
      { scenario: warm, metric: 'p99 latency (ms)', wharf: ms(percentile(wharfEchoSamples.warm, 99)), peerName: RAW, peer: ms(percentile(rawEchoSamples.warm, 99)), goal: '< 2 ms' },
      { scenario: warm, metric: 'p99 latency (ms)', wharf: ms(percentile(wharfEchoSamples.warm, 99)), peerName: WETTY, peer: ms(percentile(wettyEchoSamples.warm, 99)) },
      { scenario: cold, metric: 'p50 / p99 latency (ms)', wharf: p50p99(wharfEchoSamples.cold), peerName: RAW, peer: p50p99(rawEchoSamples.cold) },
      { scenario: cold, metric: 'p50 / p99 latency (ms)', wharf: p50p99(wharfEchoSamples.cold), peerName: WETTY, peer: p50p99(wettyEchoSamples.cold) },
    ];
  } finally {
    await bare.stop();
    await wettyOutput.stop();
    await wettyEchoServer.stop();
    await wharf.stop();
  }
}

runWhenMain(import.meta.url, run);
