/**
 * Live editing: how fast a keystroke reaches another editor and the disk, and whether many
 * editors typing at once end up with one text. wharf (browser ⇄ server ⇄ SSH ⇄ agent, which also
 * writes the file) is measured beside the stock Yjs server, `@y/websocket-server` 0.1.1 (one hop,
 * memory only), in the same run, with the same client library: `y-websocket` providers with
 * `disableBc` so every update really crosses the server. Both servers are separate processes.
 *
 * Run alone: `npx tsx bench/edit-latency.bench.ts`, or with the others: `npm run bench -- edit-latency`.
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { importPeers, locatePeerFile, type PeerProvider } from './peers.ts';
import type { BenchRow } from './types.ts';
import { delay, freePort, runWhenMain, startWharfProcess, stopChild, waitForOutput } from './support.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const EDITS = 1000;
const BLOCKS = 10;
/**
 * Blocks of warm-up edits per pair before measuring, alternating like the measured blocks. Every
 * process here (both servers, the agent, this one with its four clients) has just started: during
 * its first few thousand edits V8 is still compiling the hot code with TurboFan on background
 * threads, which on 2 cores took a quarter of the machine while measuring after a 100-edit warm-up
 * and made most of the slow 1 % for both servers (a woken relay or client waiting for a core). A running server
 * has long compiled its relay code, so the measured part starts after that. The blocks alternate
 * as the measured ones do, so the clients' code has met both servers' sockets too.
 */
const WARMUP_BLOCKS = 50;
/**
 * Quiet time before each measured block. wharf's agent saves the document 20 ms after a block's
 * last edit and then looks at its own write when the watcher reports it, 20 ms later; without a
 * pause that work ran during the stock server's next block (the agent was on a core in a third of the stock
 * server's slow samples). Applied before every block, of either server.
 */
const SETTLE_MS = 100;
const DISK_SAMPLES = 200;
const LOAD_CLIENTS = 10;
const LOAD_EDITS = 200;
const STOCK = '@y/websocket-server 0.1.1';

type Target = {
  name: string;
  /** Opens a provider on the shared document. */
  connect(doc: Y.Doc): PeerProvider;
  /** Absolute path of the document's file, when the server writes one. */
  file?: string;
  stop(): Promise<void>;
};

/**
 * y-websocket's provider hands every message to the Yjs decoder; wharf also sends JSON notices
 * as text frames (state, saved), which a browser client handles separately. This socket class
 * adds the credentials and keeps text frames away from the provider.
 */
function wharfSocketClass(token: string): unknown {
  const handlerProperty = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage') as PropertyDescriptor;
  return class WharfSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { authorization: `Bearer ${token}` } });
      Object.defineProperty(this, 'onmessage', {
        configurable: true,
        get: () => handlerProperty.get?.call(this),
        set: (handler: ((event: WebSocket.MessageEvent) => void) | null) =>
          handlerProperty.set?.call(this, handler && ((event: WebSocket.MessageEvent) => typeof event.data !== 'string' && handler(event))),
      });
    }
  };
}

async function startWharf(initial: string): Promise<Target> {
  const { url, token, dataDir, stop } = await startWharfProcess('wharf-bench-edit-');
  const file = join(dataDir, 'workspaces', 'bench', 'files', 'bench.txt');
  await writeFile(file, initial);
  const Socket = wharfSocketClass(token);
  const { WebsocketProvider } = await importPeers();
  return {
    name: 'wharf',
    file,
    connect: (doc) =>
      new WebsocketProvider(`${url.replace('http', 'ws')}/api/workspaces/bench`, 'docs', doc, {
        params: { path: 'bench.txt' },
        WebSocketPolyfill: Socket as never,
        disableBc: true,
      }),
    stop,
  };
}

async function startStock(initial: string): Promise<Target> {
  const port = await freePort();
  const { WebsocketProvider } = await importPeers();
  const child = spawn(process.execPath, [await locatePeerFile('@y/websocket-server/src/server.js')], {
    cwd: root,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForOutput(child, /running at/, STOCK);
  const target: Target = {
    name: STOCK,
    connect: (doc) => new WebsocketProvider(`ws://127.0.0.1:${port}`, 'bench', doc, { WebSocketPolyfill: WebSocket as never, disableBc: true }),
    stop: () => stopChild(child),
  };
  // The stock server starts empty: give it the same initial text wharf reads from disk.
  const seed = new Y.Doc();
  const provider = target.connect(seed);
  await synced(provider);
  seed.getText('content').insert(0, initial);
  await delay(100);
  provider.destroy();
  seed.destroy();
  return target;
}

function synced(provider: PeerProvider): Promise<void> {
  if (provider.synced) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('provider did not sync')), 15_000);
    provider.once('sync', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function ms(value: number): string {
  return value < 10 ? value.toFixed(3) : value.toFixed(1);
}

type Pair = { measure(count: number, samples: number[]): Promise<void>; close(): void };

/** Two editors of one document: A types one character, B's text changes; the time in between. */
async function openPair(target: Target): Promise<Pair> {
  const a = new Y.Doc();
  const b = new Y.Doc();
  const pa = target.connect(a);
  const pb = target.connect(b);
  await Promise.all([synced(pa), synced(pb)]);
  const ta = a.getText('content');
  const tb = b.getText('content');
  let notify: (() => void) | undefined;
  tb.observe(() => notify?.());
  let typed = 0;
  return {
    async measure(count, samples) {
      for (let i = 0; i < count; i++) {
        const seen = new Promise<void>((r) => (notify = r));
        const started = performance.now();
        ta.insert(ta.length, String.fromCharCode(97 + (typed++ % 26)));
        await seen;
        samples.push(performance.now() - started);
      }
    },
    close() {
      if (ta.toString() !== tb.toString()) throw new Error(`${target.name}: clients differ after the latency run`);
      pa.destroy();
      pb.destroy();
    },
  };
}

/**
 * Both servers in alternating blocks of edits, so a burst of load from elsewhere on the machine
 * hits both alike; measured after the same warm-up for both (see WARMUP_BLOCKS).
 */
async function measurePropagation(targets: Target[]): Promise<number[][]> {
  const pairs = await Promise.all(targets.map(openPair));
  const samples = targets.map(() => [] as number[]);
  for (let block = 0; block < WARMUP_BLOCKS; block++) {
    for (const pair of pairs) await pair.measure(EDITS / BLOCKS, []);
  }
  for (let block = 0; block < BLOCKS; block++) {
    for (let t = 0; t < pairs.length; t++) {
      await delay(SETTLE_MS);
      await pairs[t].measure(EDITS / BLOCKS, samples[t]);
    }
  }
  for (const pair of pairs) pair.close();
  return samples.map((s) => s.sort((x, y) => x - y));
}

/** A types one character, then the file on disk has it: inotify tells us when to look. */
async function measureDisk(target: Target & { file: string }): Promise<number[]> {
  const a = new Y.Doc();
  const pa = target.connect(a);
  await synced(pa);
  const ta = a.getText('content');
  const samples: number[] = [];
  let check: (() => void) | undefined;
  const watcher = watch(dirname(target.file), () => check?.());
  try {
    for (let i = 0; i < DISK_SAMPLES; i++) {
      const expected = ta.toString() + 'z';
      const started = performance.now();
      const reached = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('edit did not reach the disk in 5 s')), 5000);
        check = () => {
          readFile(target.file, 'utf8').then((text) => {
            if (text === expected) {
              clearTimeout(timer);
              check = undefined;
              resolve();
            }
          }, () => {});
        };
      });
      ta.insert(ta.length, 'z');
      await reached;
      samples.push(performance.now() - started);
      // Let the save settle so every sample is a keystroke after a pause, like a typist's last one.
      await delay(30);
    }
  } finally {
    watcher.close();
    pa.destroy();
  }
  return samples.sort((x, y) => x - y);
}

/** Ten editors type and delete at random positions at once; then every copy (and the file) must agree. */
async function measureConvergence(target: Target): Promise<{ ok: boolean; ms: number; detail: string }> {
  const docs = Array.from({ length: LOAD_CLIENTS }, () => new Y.Doc());
  const providers = docs.map((d) => target.connect(d));
  await Promise.all(providers.map(synced));
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const started = performance.now();
  await Promise.all(
    docs.map(async (doc) => {
      const text = doc.getText('content');
      for (let i = 0; i < LOAD_EDITS; i++) {
        const at = Math.floor(random() * (text.length + 1));
        if (random() < 0.3 && text.length > 0) text.delete(Math.min(at, text.length - 1), 1);
        else text.insert(at, String.fromCharCode(97 + Math.floor(random() * 26)));
        await delay(random() * 4);
      }
    }),
  );
  const deadline = Date.now() + 30_000;
  let detail = '';
  let ok = false;
  while (Date.now() < deadline) {
    const texts = docs.map((d) => d.getText('content').toString());
    const same = texts.every((t) => t === texts[0]);
    const disk = target.file ? await readFile(target.file, 'utf8') : texts[0];
    if (same && disk === texts[0]) {
      ok = true;
      detail = `${texts[0].length} chars`;
      break;
    }
    detail = same ? 'file differs from the editors' : 'editors differ';
    await delay(5);
  }
  const elapsed = performance.now() - started;
  for (const p of providers) p.destroy();
  return { ok, ms: elapsed, detail };
}

export async function run(): Promise<BenchRow[]> {
  const initial = 'live editing benchmark\n';
  const wharf = await startWharf(initial);
  const stock = await startStock(initial);
  try {
    const load = loadavg()[0];
    const [w, s] = await measurePropagation([wharf, stock]);
    const disk = await measureDisk(wharf as Target & { file: string });
    const wharfLoad = await measureConvergence(wharf);
    const stockLoad = await measureConvergence(stock);
    const scenario = `edit propagation, A's keystroke → B's text (${EDITS} single-character edits each, after ${(WARMUP_BLOCKS * EDITS) / BLOCKS} to warm up; load average ${load.toFixed(1)} at the start)`;
    return [
      { scenario, metric: 'p50 latency (ms)', wharf: ms(percentile(w, 50)), peer: ms(percentile(s, 50)), peerName: STOCK, goal: `≤ 1.5 × peer (${ms(1.5 * percentile(s, 50))})` },
      { scenario, metric: 'p99 latency (ms)', wharf: ms(percentile(w, 99)), peer: ms(percentile(s, 99)), peerName: STOCK, goal: '< 2 ms' },
      {
        scenario: `keystroke → file on disk (${DISK_SAMPLES} edits, each after a pause)`,
        metric: 'p50 / p99 latency (ms)',
        wharf: `${ms(percentile(disk, 50))} / ${ms(percentile(disk, 99))}`,
        peer: 'n/a (keeps documents in memory)',
        peerName: STOCK,
        goal: 'p99 < 100 ms',
      },
      {
        scenario: `convergence: ${LOAD_CLIENTS} clients × ${LOAD_EDITS} random edits on one file`,
        metric: 'identical result; time to converge',
        wharf: `${wharfLoad.ok ? 'pass' : 'FAIL'}: file = every client (${wharfLoad.detail}), ${(wharfLoad.ms / 1000).toFixed(2)} s`,
        peer: `${stockLoad.ok ? 'pass' : 'FAIL'}: every client (${stockLoad.detail}), ${(stockLoad.ms / 1000).toFixed(2)} s`,
        peerName: STOCK,
        goal: 'pass',
      },
    ];
  } finally {
    await Promise.all([wharf.stop(), stock.stop()]);
  }
}

runWhenMain(import.meta.url, run);
