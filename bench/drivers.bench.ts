/**
 * Drivers: what a workspace costs to bring up and to keep, on the process driver and the docker
 * driver (issue 16), each beside its floor measured in the same run on the same engine:
 *
 * - create → ready: `POST /api/workspaces` until the agent answers a files request, beside
 *   `docker run -d` + `docker exec true` of the same image (the engine's own floor for "a
 *   container you can run a command in"), and beside spawning the agent program by hand;
 * - idle agent RSS, beside a bare ssh2 server in Node (what any agent built on ssh2 costs: the
 *   design's floor) and an empty Node program;
 * - 50 docker workspaces with one idle terminal each: the time to start them all, the server's and
 *   the agents' RSS and their CPU while idle, beside 50 `docker run` containers doing nothing.
 *
 * Run alone: `npx tsx bench/drivers.bench.ts`, or `npm run bench -- drivers`. Needs the docker
 * engine of the test set-up (WHARF_TEST_DOCKER_HOST), which the runner starts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireEngine } from '../test/support/images.ts';
import { ensureBusyboxWorkspaceImage } from '../test/support/workspace-images.ts';
import { createRequire } from 'node:module';
import { delay, runWhenMain, spawnTypeScript, stopChild, waitForOutput, SERVER_ENV } from './support.ts';
import type { BenchRow } from './types.ts';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);
const ROUNDS = 5;
const MANY = 50;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

type Server = { url: string; token: string; child: ChildProcess; dataDir: string; stop(): Promise<void> };

async function startServer(args: string[]): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-bench-drivers-'));
  const token = randomBytes(16).toString('hex');
  const child = spawnTypeScript('server/serve.ts', ['--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--token', token, '--sandbox', 'none', '--log-level', 'warn', ...args], SERVER_ENV);
  const stop = async () => {
    await stopChild(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const [, url] = await waitForOutput(child, /wharf is running at (http:\/\/\S+)/, 'wharf');
    return { url, token, child, dataDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function api(server: Server, path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${server.token}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
  });
}

/** Milliseconds from the create request until the agent has answered a files request. */
async function createToReady(server: Server, name: string): Promise<number> {
  const started = performance.now();
  const res = await api(server, '/api/workspaces', { method: 'POST', json: { name } });
  if (res.status !== 201) throw new Error(`create ${name}: ${res.status} ${await res.text()}`);
  for (;;) {
    const files = await api(server, `/api/workspaces/${name}/files/`);
    await files.arrayBuffer();
    if (files.ok) return performance.now() - started;
    if (performance.now() - started > 120_000) throw new Error(`${name}: not ready after 120 s (${files.status})`);
    await delay(20);
  }
}

async function removeWorkspace(server: Server, name: string): Promise<void> {
  const res = await api(server, `/api/workspaces/${name}`, { method: 'DELETE' });
  if (res.status !== 204) throw new Error(`delete ${name}: ${res.status} ${await res.text()}`);
}

async function rssKiB(pid: number | string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

/** user+system CPU ticks of a process (clock ticks, 100 per second here). */
async function cpuTicks(pid: number | string): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
}

/** The script a node process runs: the argument after the node binary (the runtime's loader may come first). */
function scriptOf(args: string[]): string | undefined {
  // The process itself must be node or the runtime's loader: a container's init (docker-init,
  // catatonit) carries the supervisor's whole command line as its arguments.
  if (!/(^|\/)(node|ld-linux[^/]*\.so\.\d+)$/.test(args[0] ?? '')) return undefined;
  const node = args.findIndex((a) => /(^|\/)node$/.test(a));
  return node >= 0 ? args[node + 1] : undefined;
}

async function argsOf(pid: number | string): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
}

/**
 * Host pids of agent processes, recognised by their command line: node running agent.cjs, not
 * as a bridge. (In a docker workspace the container's init and the supervisor carry the agent's
 * arguments on their command lines too; they run something else.)
 */
async function findAgents(match: (cmdline: string) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const args = await argsOf(pid);
    if (scriptOf(args)?.endsWith('agent.cjs') && args[args.indexOf(scriptOf(args)!) + 1] !== 'bridge' && match(args.join(' '))) out.push(Number(pid));
  }
  return out;
}

/**
 * Host pids of the docker workspaces' supervisors: the runtime's sh running /.wharf/supervise.sh
 * (through the runtime's loader), or node running /.wharf/supervise.mjs in containers made before.
 */
async function findSupervisors(): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const args = await argsOf(pid);
    const shell = /(^|\/)(sh|ld-linux[^/]*\.so\.\d+)$/.test(args[0] ?? '') ? args.indexOf('/.wharf/bin/sh') : -1;
    if ((shell >= 0 && args[shell + 1] === '/.wharf/supervise.sh') || scriptOf(args) === '/.wharf/supervise.mjs') out.push(Number(pid));
  }
  return out;
}

/** Proportional set size (KiB): shared pages (the node binary's text, the same file for every workspace) split among their users. */
async function pssKiB(pid: number): Promise<number> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  return Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
}

async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ')[0];
}

/** RSS once it stops moving: four samples 250 ms apart within 2 % (at most 20 s). */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    samples.push(await rssKiB(pid));
    const last = samples.slice(-4);
    if (last.length === 4 && Math.max(...last) - Math.min(...last) <= 0.02 * Math.max(...last)) return median(last) / 1024;
    if (Date.now() > deadline) return median(last) / 1024;
    await delay(250);
  }
}

async function docker(host: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('docker', ['-H', host, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** The engine's floor: a container of the same image that one can run a command in. */
async function dockerRunExec(host: string, image: string, name: string): Promise<number> {
  const started = performance.now();
  await docker(host, 'run', '-d', '--name', name, '--network', 'none', '--label', 'dev.wharf.bench=1', image, 'sleep', '86400');
  await docker(host, 'exec', name, 'true');
  return performance.now() - started;
}

/** A bare ssh2 server in Node on a unix socket, nothing else: the floor of an ssh2-based agent. */
async function bareSsh2Rss(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-ssh2-'));
  const script = join(dir, 'server.cjs');
  await writeFile(
    script,
    `const { Server, utils } = require(${JSON.stringify(require.resolve('ssh2'))});
const key = utils.generateKeyPairSync('ed25519').private;
new Server({ hostKeys: [key] }, (c) => c.on('error', () => {})).listen(${JSON.stringify(join(dir, 's.sock'))}, () => console.log('up'));`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForOutput(child, /up/, 'bare ssh2 server');
    return await settledRss(child.pid!);
  } finally {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
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

/** CPU seconds per minute used by `pids` over `ms` of idling. */
async function idleCpu(pids: number[], ms: number): Promise<number> {
  const before = await Promise.all(pids.map(cpuTicks));
  await delay(ms);
  const after = await Promise.all(pids.map(cpuTicks));
  const ticks = after.reduce((sum, t, i) => sum + Math.max(0, t - before[i]), 0);
  return (ticks / 100) * (60_000 / ms);
}

export async function run(): Promise<BenchRow[]> {
  const engine = requireEngine('docker');
  const image = await ensureBusyboxWorkspaceImage(engine);
  const rows: BenchRow[] = [];
  const suffix = randomBytes(3).toString('hex');
  const load = await loadAverage();

  // create → ready, alternating the three so a busy moment of the machine falls on each.
  const processServer = await startServer([]);
  const dockerServer = await startServer(['--driver', 'docker', '--docker-host', engine.endpoint, '--workspace-image', image]);
  const times = { process: [] as number[], docker: [] as number[], floor: [] as number[] };
  let processRss = 0;
  let dockerRss = 0;
  let supervisorRss = 0;
  try {
    for (let i = 0; i < ROUNDS; i += 1) {
      times.process.push(await createToReady(processServer, `p${i}`));
      times.docker.push(await createToReady(dockerServer, `d${i}`));
      times.floor.push(await dockerRunExec(engine.endpoint, image, `wharf-bench-floor-${suffix}-${i}`));
    }
    // Idle RSS of one agent of each, after its files request (p0 and d0 answered one above).
    const [processAgent] = await findAgents((c) => c.includes(`${processServer.dataDir}/workspaces/p0/`));
    processRss = await settledRss(processAgent);
    const dockerAgents = await findAgents((c) => c.includes('/.wharf/agent/agent.cjs'));
    dockerRss = median(await Promise.all(dockerAgents.map(settledRss)));
    supervisorRss = median(await Promise.all((await findSupervisors()).map(settledRss)));
    for (let i = 0; i < ROUNDS; i += 1) {
      await removeWorkspace(processServer, `p${i}`);
      await removeWorkspace(dockerServer, `d${i}`);
    }
  } finally {
    await processServer.stop();
    await dockerServer.stop();
    await docker(engine.endpoint, 'rm', '-f', ...Array.from({ length: ROUNDS }, (_, i) => `wharf-bench-floor-${suffix}-${i}`)).catch(() => '');
  }
  const floor = median(times.floor);
  rows.push(
    {
      scenario: `create → ready (agent answers a files request), busybox image, median of ${ROUNDS} (load average ${load} at the start)`,
      metric: 'time (ms)',
      wharf: `docker driver ${median(times.docker).toFixed(0)} (${(median(times.docker) / floor).toFixed(2)}×)`,
      peer: floor.toFixed(0),
      peerName: '`docker run -d` + `docker exec true`, same image and engine',
      goal: `≤ 1.3× the floor (≤ ${(1.3 * floor).toFixed(0)})`,
    },
    {
      scenario: `create → ready (agent answers a files request), median of ${ROUNDS}`,
      metric: 'time (ms)',
      wharf: `process driver ${median(times.process).toFixed(0)}`,
      peer: floor.toFixed(0),
      peerName: '`docker run -d` + `docker exec true`',
    },
  );
  const [bare, empty] = [await bareSsh2Rss(), await emptyNodeRss()];
  for (const [driver, rss] of [['docker', dockerRss], ['process', processRss]] as const) {
    rows.push({
      scenario: `one idle workspace agent (${driver} driver), after one files request`,
      metric: 'RSS (MiB)',
      wharf: rss.toFixed(1),
      peer: `${bare.toFixed(1)} (empty node ${empty.toFixed(1)})`,
      peerName: 'bare ssh2 server in node, listening (the floor of an ssh2 agent)',
      goal: '≤ 50 MB (47.7 MiB)',
    });
  }
  rows.push({
    scenario: 'the supervisor beside each docker workspace agent (the runtime\'s sh running /.wharf/supervise.sh), idle',
    metric: 'RSS (MiB)',
    wharf: supervisorRss.toFixed(1),
    peer: empty.toFixed(1),
    peerName: 'node, empty program (the supervisor before: node running supervise.mjs)',
  });

  // 50 docker workspaces, one idle terminal each.
  const many = await startServer(['--driver', 'docker', '--docker-host', engine.endpoint, '--workspace-image', image]);
  const floorNames = Array.from({ length: MANY }, (_, i) => `wharf-bench-many-${suffix}-${i}`);
  try {
    const started = performance.now();
    // Eight at a time: what a team's morning looks like, without one request per workspace at once.
    const names = Array.from({ length: MANY }, (_, i) => `w${i}`);
    for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map((n) => createToReady(many, n)));
    const allReady = performance.now() - started;
    for (const name of names) {
      const res = await api(many, `/api/workspaces/${name}/terminals`, { method: 'POST', json: { command: 'sh' } });
      if (res.status !== 201) throw new Error(`terminal in ${name}: ${res.status} ${await res.text()}`);
    }
    const agents = await findAgents((c) => c.includes('/.wharf/agent/agent.cjs'));
    const supervisors = await findSupervisors();
    await delay(5_000);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0) / 1024;
    const serverRss = (await rssKiB(many.child.pid!)) / 1024;
    const agentsRss = sum(await Promise.all(agents.map(rssKiB)));
    const agentsPss = sum(await Promise.all(agents.map(pssKiB)));
    const supervisorsPss = sum(await Promise.all(supervisors.map(pssKiB)));
    const cpu = await idleCpu([many.child.pid!, ...agents, ...supervisors], 30_000);

    const floorStarted = performance.now();
    for (let i = 0; i < floorNames.length; i += 8) {
      await Promise.all(floorNames.slice(i, i + 8).map((n) => docker(engine.endpoint, 'run', '-d', '--name', n, '--network', 'none', '--label', 'dev.wharf.bench=1', image, 'sleep', '86400')));
    }
    const floorAll = performance.now() - floorStarted;
    rows.push(
      {
        scenario: `${MANY} docker workspaces (busybox), created 8 at a time until each agent answers`,
        metric: 'time to start them all (s)',
        wharf: (allReady / 1000).toFixed(1),
        peer: (floorAll / 1000).toFixed(1),
        peerName: `${MANY} \`docker run -d … sleep\`, 8 at a time`,
      },
      {
        scenario: `${MANY} docker workspaces with one idle terminal each (${agents.length} agents found)`,
        metric: 'RSS (MiB): server + all agents',
        wharf: `${serverRss.toFixed(0)} + ${agentsRss.toFixed(0)}`,
        peer: `${(bare * MANY).toFixed(0)}`,
        peerName: `${MANY} × the bare ssh2 server above (RSS)`,
      },
      {
        scenario: `${MANY} docker workspaces with one idle terminal each (${agents.length} agents, ${supervisors.length} supervisors)`,
        metric: 'PSS (MiB, shared pages split): all agents + all supervisors',
        wharf: `${agentsPss.toFixed(0)} + ${supervisorsPss.toFixed(0)}`,
        peer: '—',
        peerName: '(RSS counts the node binary shared by all of them once per process)',
      },
      {
        scenario: `${MANY} docker workspaces with one idle terminal each, idle for 30 s`,
        metric: 'CPU (s per minute): server + agents + supervisors',
        wharf: cpu.toFixed(2),
        peer: '0',
        peerName: 'nothing to do',
      },
    );
  } finally {
    // Containers outlive the server (that is the point): delete them through it first.
    for (let i = 0; i < MANY; i += 8) await Promise.all(Array.from({ length: 8 }, (_, j) => `w${i + j}`).filter((_, j) => i + j < MANY).map((n) => removeWorkspace(many, n).catch(() => {})));
    await many.stop();
    await docker(engine.endpoint, 'rm', '-f', ...floorNames).catch(() => '');
  }
  return rows;
}

runWhenMain(import.meta.url, run);
