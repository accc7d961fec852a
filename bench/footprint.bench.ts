/**
 * Footprint: what each of wharf's programs costs before it does any work. The control server's
 * start-up (spawn until it prints its URL, as `npm start` runs it) and the idle RSS of one
 * workspace agent (after it has answered one files request), each beside the same measurement of
 * an empty Node program started the same way: the floor a Node process cannot go under, so the
 * gap is what wharf's own code and packages add. Each program should load only its own half of
 * every feature (issue 14): the server no ptys or file watchers, the agent no HTTP framework or
 * protobuf; these figures show what that saves.
 *
 * Run alone: `npx tsx bench/footprint.bench.ts`, or with the others: `npm run bench -- footprint`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRow } from './types.ts';
import { delay, runWhenMain, startWharfProcess, stopChild, waitForOutput } from './support.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const STARTS = 7;
const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Milliseconds from spawning `args` until its output matches `ready`. */
async function timeStart(args: string[], ready: RegExp): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForOutput(child, ready, args.join(' '));
    return performance.now() - started;
  } finally {
    await stopChild(child);
  }
}

async function serverStart(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-bench-start-'));
  try {
    const token = randomBytes(16).toString('hex');
    return await timeStart(
      ['--import', loader, join(root, 'server/serve.ts'), '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--token', token, '--sandbox', 'none', '--log-level', 'warn'],
      /wharf is running at/,
    );
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Resident set of a process in MiB, from /proc. */
async function rssMiB(pid: number | string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]);
  return kib / 1024;
}

/** The RSS once it stops moving: four samples 250 ms apart within 2 % of each other (at most 20 s). */
async function settledRss(pid: number | string): Promise<number> {
  const samples: number[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    samples.push(await rssMiB(pid));
    const last = samples.slice(-4);
    if (last.length === 4 && Math.max(...last) - Math.min(...last) <= 0.02 * Math.max(...last)) return median(last);
    if (Date.now() > deadline) return median(last);
    await delay(250);
  }
}

/** The agent process serving workspaces under `dataDir` (not a sandbox wrapper). */
async function findAgent(dataDir: string): Promise<string> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const [program] = cmdline.split('\0');
    if (cmdline.includes(`${dataDir}/workspaces/`) && /node$/.test(program)) return pid;
  }
  throw new Error(`no agent process found for ${dataDir}`);
}

async function agentIdleRss(): Promise<number> {
  const wharf = await startWharfProcess('wharf-bench-footprint-');
  try {
    const res = await fetch(`${wharf.url}/api/workspaces/bench/files`, { headers: { authorization: `Bearer ${wharf.token}` } });
    if (!res.ok) throw new Error(`list files: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    return await settledRss(await findAgent(wharf.dataDir));
  } finally {
    await wharf.stop();
  }
}

async function emptyNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'console.log("up"); setInterval(() => {}, 1e9)'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForOutput(child, /up/, 'empty node');
    return await settledRss(child.pid!);
  } finally {
    await stopChild(child);
  }
}

export async function run(): Promise<BenchRow[]> {
  const server: number[] = [];
  const floor: number[] = [];
  // Alternated, so a busy moment of the machine falls on both.
  for (let i = 0; i < STARTS; i += 1) {
    server.push(await serverStart());
    floor.push(await timeStart(['--import', loader, '--input-type=module', '-e', 'console.log("up")'], /up/));
  }
  const agent: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    agent.push(await agentIdleRss());
    bare.push(await emptyNodeRss());
  }
  return [
    {
      scenario: 'control server start-up (spawn → URL printed, npm start)',
      metric: `median of ${STARTS} (ms)`,
      wharf: median(server).toFixed(0),
      peer: median(floor).toFixed(0),
      peerName: 'node + tsx, empty program',
    },
    {
      scenario: 'one workspace agent, idle after one request',
      metric: 'RSS (MiB), median of 3',
      wharf: median(agent).toFixed(1),
      peer: median(bare).toFixed(1),
      peerName: 'node, empty program',
    },
  ];
}

runWhenMain(import.meta.url, run);
