/**
 * Hybrid mode's tunnels (`wharf up`): bulk throughput through a forward rule (laptop → workspace,
 * what `ssh -L` does) and a reverse rule (workspace → laptop, `ssh -R`) with the CPU it cost each
 * of the tunnel's processes per GB (which the rest of a shared machine's load moves far less than
 * the throughput), 64-byte request/response round trips through each, memory with 100
 * connections open, and the time from starting the helper to every rule listening. Four paths, measured in the same run, one after another in
 * interleaved rounds, with the same client and the same far end (bench/tunnel-endpoint.ts, its
 * own process) on every path:
 *
 * - wharf: a control server started as `npm start` starts it, its process-driver workspace
 *   agent, and the helper as install.sh installs it here (the single executable
 *   dist/wharf-linux-x64, with ssh2's native ciphers) running `wharf up` from a temp project
 *   whose okteto.yml has a `dev` section in hybrid mode; the data path is helper (ssh2 client)
 *   ⇄ websocket ⇄ control server ⇄ unix socket ⇄ agent (ssh2 server). The JavaScript bundle
 *   (dist/wharf.cjs on node: Node's crypto) is measured after it, for throughput and CPU;
 * - OpenSSH: `ssh -N -L … -R …` to an sshd of our own on 127.0.0.1 (its own config, keys and
 *   port; stopped at the end), both with their default ciphers;
 * - bare relay: the same three-process architecture with nothing of wharf (bench/bare-tunnel.ts):
 *   the ceiling of this design on this machine;
 * - direct loopback: the client straight to the far end, what the machine does without a tunnel.
 *
 * The process driver's workspaces share the host's network, so "laptop" and "workspace" are both
 * 127.0.0.1 here, as in the tests. Everything runs on the same two cores as the client, so the
 * load average at the start is part of every scenario.
 *
 * Run alone: `npx tsx bench/tunnel.bench.ts`, or with the others: `npm run bench -- tunnel`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { loadavg, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { BenchRow } from './types.ts';
import { delay, runWhenMain, spawnTypeScript, startWharfProcess, stopChild, waitForOutput, type WharfProcess } from './support.ts';

const exec = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));

const BULK_BYTES = 256 * 2 ** 20;
const BULK_CHUNK = 256 * 1024;
const ROUNDS = 5;
const RTT_BYTES = 64;
/** Round trips go in interleaved rounds like the transfers: RTT_ROUNDS × RTT_SAMPLES per path and direction, pooled. */
const RTT_ROUNDS = 5;
const RTT_SAMPLES = 1000;
/** Warm-up round trips on each round's connection: more on the first, while V8 still compiles. */
const RTT_WARMUP_FIRST = 2000;
const RTT_WARMUP = 400;
const HELD = 100;
const STARTS = 5;
const MEASUREMENT_TIMEOUT_MS = 120_000;
/** USER_HZ of /proc/<pid>/stat: 100 on Linux everywhere that matters. */
const CLOCK_TICKS = 100;

const BARE = 'bare relay: ssh2 ⇄ ws ⇄ relay ⇄ ssh2 (three processes, nothing of wharf)';
const DIRECT = 'direct loopback (no tunnel)';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];

/** The ports a path's client connects to: through its forward rules and through its reverse rules. */
type Ends = { sink: number; echo: number };
/** `pids`: the processes of the tunnel itself (not the client, not the far end), for its CPU cost. */
type Path = { forward: Ends; reverse: Ends; pids(): Promise<number[]>; stop(): Promise<void> };

function withDeadline<T>(promise: Promise<T>, what: string, ms = MEASUREMENT_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Ports handed out in this run: one picked later must not be one of them, though its probe has closed. */
const taken = new Set<number>();

/** `count` free ports, distinct from each other and from every port picked before in this run. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const probes = [];
  while (ports.length < count) {
    const probe = createServer();
    probes.push(probe);
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as AddressInfo).port)));
    if (!taken.has(port)) {
      taken.add(port);
      ports.push(port);
    }
  }
  await Promise.all(probes.map((probe) => new Promise((resolve) => probe.close(resolve))));
  return ports;
}

/** A path's forward and reverse ports. */
async function freeEnds(): Promise<{ forward: Ends; reverse: Ends }> {
  const [a, b, c, d] = await freePorts(4);
  return { forward: { sink: a, echo: b }, reverse: { sink: c, echo: d } };
}

function canConnect(port: number): Promise<boolean> {
  return open(port).then(
    (socket) => {
      socket.destroy();
      return true;
    },
    () => false,
  );
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(everyMs);
  }
}

// ------------------------------------------------------------------------------------ the client

const payload = randomBytes(BULK_CHUNK);

/** Resolves on 'drain'; rejects if the socket closes first. Listeners go either way. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      reject(new Error('closed while sending'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** CPU time (user + system, all threads) the processes have used so far, in seconds. */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name: state is the 3rd field, utime and stime the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / CLOCK_TICKS;
}

/** `cpuPerGB`: all the tunnel's processes together; `parts`: each of them, in the order of `pids`. */
type Transfer = { mbps: number; cpuPerGB: number; parts: number[] };

/**
 * Sends BULK_BYTES to a sink (length first) and times it until the sink says it has them all;
 * also what it cost the path's own processes in CPU, which the other work on the machine moves
 * much less than the wall-clock figure.
 */
async function bulk(port: number, pids: () => Promise<number[]> = async () => []): Promise<Transfer> {
  const tunnel = await pids();
  const cpuBefore = await Promise.all(tunnel.map((pid) => cpuSeconds([pid])));
  const socket = await open(port);
  try {
    const done = new Promise<void>((resolve, reject) => {
      socket.once('data', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before the sink had every byte')));
    });
    done.catch(() => {});
    const started = performance.now();
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(BULK_BYTES));
    socket.write(header);
    for (let sent = 0; sent < BULK_BYTES; sent += BULK_CHUNK) {
      if (!socket.write(payload.subarray(0, Math.min(BULK_CHUNK, BULK_BYTES - sent)))) await drained(socket);
    }
    await withDeadline(done, `${BULK_BYTES} bytes to port ${port}`);
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = await Promise.all(tunnel.map((pid) => cpuSeconds([pid])));
    const parts = tunnel.map((_, i) => (cpuAfter[i] - cpuBefore[i]) / (BULK_BYTES / 1e9));
    return { mbps: BULK_BYTES / 1e6 / seconds, cpuPerGB: parts.reduce((a, b) => a + b, 0), parts };
  } finally {
    socket.destroy();
  }
}

/** One 64-byte message to an echo end and back, `count` times on one connection: each round trip in ms. */
async function roundTrips(socket: Socket, count: number): Promise<number[]> {
  const message = randomBytes(RTT_BYTES);
  const samples: number[] = [];
  let received = 0;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received >= RTT_BYTES) wake?.();
  };
  socket.on('data', onData);
  try {
    for (let i = 0; i < count; i++) {
      received = 0;
      const back = new Promise<void>((resolve) => (wake = resolve));
      const started = performance.now();
      socket.write(message);
      await back;
      samples.push(performance.now() - started);
    }
  } finally {
    socket.off('data', onData);
  }
  return samples;
}

async function latency(port: number, warmup = RTT_WARMUP_FIRST): Promise<number[]> {
  const socket = await open(port);
  try {
    await withDeadline(roundTrips(socket, warmup), `warm-up round trips on port ${port}`);
    return await withDeadline(roundTrips(socket, RTT_SAMPLES), `round trips on port ${port}`);
  } finally {
    socket.destroy();
  }
}

/** HELD connections, half through each direction, each after one round trip (so it is open end to end). */
async function holdConnections(path: Path): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < HELD; i++) {
    const socket = await open(i % 2 === 0 ? path.forward.echo : path.reverse.echo);
    sockets.push(socket);
    await withDeadline(roundTrips(socket, 1), 'a round trip on a held connection', 10_000);
  }
  return sockets;
}

// ------------------------------------------------------------------------------------ processes

/** Resident set of a process in MiB, from /proc. */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024;
}

/** The RSS of `pids` together once it stops moving: four samples 250 ms apart within 2 % (at most 10 s). */
async function settledRss(pids: () => Promise<number[]>): Promise<number> {
  const samples: number[] = [];
  const deadline = Date.now() + 10_000;
  for (;;) {
    let total = 0;
    for (const pid of await pids()) total += await rssMiB(pid).catch(() => 0);
    samples.push(total);
    const last = samples.slice(-4);
    if (last.length === 4 && Math.max(...last) - Math.min(...last) <= 0.02 * Math.max(...last)) return median(last);
    if (Date.now() > deadline) return median(last);
    await delay(250);
  }
}

async function processes(): Promise<{ pid: number; ppid: number; cmdline: string }[]> {
  const found = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const ppid = Number(/\) \S (\d+)/.exec(stat)?.[1]);
    if (stat) found.push({ pid: Number(name), ppid, cmdline });
  }
  return found;
}

async function descendants(pid: number): Promise<number[]> {
  const all = await processes();
  const result: number[] = [];
  const walk = (parent: number) => {
    for (const p of all) {
      if (p.ppid !== parent) continue;
      result.push(p.pid);
      walk(p.pid);
    }
  };
  walk(pid);
  return result;
}

/** The agent process serving workspaces under `dataDir` (as bench/footprint.bench.ts finds it). */
async function findAgent(dataDir: string): Promise<number> {
  for (const p of await processes()) {
    const [program] = p.cmdline.split('\0');
    if (p.cmdline.includes(`${dataDir}/workspaces/`) && /node$/.test(program)) return p.pid;
  }
  throw new Error(`no agent process found for ${dataDir}`);
}

function collectOutput(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d));
  child.stderr?.on('data', (d: Buffer) => (output += d));
  return () => output;
}

/** Spawn → every forward and reverse port accepts a connection (each probed every 5 ms), in ms. */
async function timeToListening(start: () => ChildProcess, ends: Ends[], what: string): Promise<{ ms: number; child: ChildProcess }> {
  const started = performance.now();
  const child = start();
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before its rules listened`))));
  exited.catch(() => {});
  await Promise.race([Promise.all(ends.flatMap((e) => [e.sink, e.echo]).map((port) => waitUntil(`${what}: port ${port}`, () => canConnect(port)))), exited]);
  return { ms: performance.now() - started, child };
}

/** Ready for the next start: the previous session's reverse ports are closed again. */
async function released(ends: Ends): Promise<void> {
  await waitUntil('the reverse ports to close', async () => !(await canConnect(ends.sink)) && !(await canConnect(ends.echo)), 30_000, 20);
}

// ----------------------------------------------------------------------------------- the far end

type Endpoint = Ends & { stop(): Promise<void> };

async function startEndpoint(): Promise<Endpoint> {
  const child = spawnTypeScript('bench/tunnel-endpoint.ts', []);
  const [, sink, echo] = await waitForOutput(child, /endpoint sink (\d+) echo (\d+)/, 'tunnel endpoint');
  return { sink: Number(sink), echo: Number(echo), stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------- wharf

type WharfUp = Path & { helper: ChildProcess; output: () => string };

type WharfSetup = { wharf: WharfProcess; home: string; project: string; env: NodeJS.ProcessEnv; forward: Ends; reverse: Ends };

async function prepareWharf(endpoint: Endpoint): Promise<WharfSetup> {
  const wharf = await startWharfProcess('wharf-bench-tunnel-');
  try {
    const home = join(wharf.dataDir, 'home');
    const project = join(wharf.dataDir, 'project');
    await mkdir(home);
    await mkdir(project);
    const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: join(home, 'config') };
    await exec(process.execPath, [join(root, 'dist', 'wharf.cjs'), 'login', wharf.url, '--token', wharf.token], { cwd: home, env });
    const { forward, reverse } = await freeEnds();
    await writeFile(
      join(project, 'okteto.yml'),
      [
        'name: bench',
        'dev:',
        '  tunnel:',
        '    mode: hybrid',
        '    forward:',
        `      - ${forward.sink}:127.0.0.1:${endpoint.sink}`,
        `      - ${forward.echo}:127.0.0.1:${endpoint.echo}`,
        '    reverse:',
        `      - ${reverse.sink}:${endpoint.sink}`,
        `      - ${reverse.echo}:${endpoint.echo}`,
        '',
      ].join('\n'),
    );
    return { wharf, home, project, env, forward, reverse };
  } catch (err) {
    await wharf.stop();
    throw err;
  }
}

/**
 * The helper as install.sh installs it on this machine: the single executable (dist/wharf-linux-x64,
 * which carries ssh2's native cipher binding) where it is built, else the JavaScript bundle run by
 * node (dist/wharf.cjs, ssh2 with Node's crypto), as on a machine with no executable for it.
 */
const EXECUTABLE = join(root, 'dist', 'wharf-linux-x64');
const BUNDLE = join(root, 'dist', 'wharf.cjs');
let installed = BUNDLE;

function spawnWharfUp(setup: WharfSetup, program = installed): ChildProcess {
  const [command, args] = program === BUNDLE ? [process.execPath, [program]] : [program, []];
  return spawn(command, [...args, 'up', 'tunnel'], { cwd: setup.project, env: setup.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function startWharfUp(setup: WharfSetup, program?: string): Promise<WharfUp> {
  const helper = spawnWharfUp(setup, program);
  const output = collectOutput(helper);
  try {
    await waitForOutput(helper, /connected to workspace/, 'wharf up');
    if (/failed:/.test(output())) throw new Error(`wharf up: a rule failed:\n${output()}`);
  } catch (err) {
    await stopChild(helper);
    throw err;
  }
  return { helper, output, forward: setup.forward, reverse: setup.reverse, pids: async () => [helper.pid!], stop: () => stopChild(helper) };
}

// -------------------------------------------------------------------------------------- OpenSSH

type Sshd = { port: number; dir: string; key: string; pid: number; stop(): Promise<void> };

async function startSshd(): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-sshd-'));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user_key')]);
    await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')));
    const [port] = await freePorts(1);
    await writeFile(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowTcpForwarding yes',
        'GatewayPorts no',
        'X11Forwarding no',
        'PrintMotd no',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    // sshd insists on its privilege separation directory, which only the service's unit creates.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = sshd;
    const output = collectOutput(sshd);
    sshd.once('exit', (code) => {
      if (code) console.error(`sshd exited with ${code}: ${output()}`);
    });
    await waitUntil('sshd to listen', () => canConnect(port), 10_000, 20);
    return { port, dir, key: join(dir, 'user_key'), pid: sshd.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function prepareOpenSsh(endpoint: Endpoint): Promise<{ forward: Ends; reverse: Ends; sshdPid: number; spawn(): ChildProcess }> {
  const sshd = await startSshd();
  cleanups.push(sshd.stop);
  const { forward, reverse } = await freeEnds();
  const args = [
    '-v', // only for the negotiated cipher line
    '-F', '/dev/null',
    '-N',
    '-i', sshd.key,
    '-p', String(sshd.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ExitOnForwardFailure=yes',
    '-L', `${forward.sink}:127.0.0.1:${endpoint.sink}`,
    '-L', `${forward.echo}:127.0.0.1:${endpoint.echo}`,
    '-R', `${reverse.sink}:127.0.0.1:${endpoint.sink}`,
    '-R', `${reverse.echo}:127.0.0.1:${endpoint.echo}`,
    `${userInfo().username}@127.0.0.1`,
  ];
  return { forward, reverse, sshdPid: sshd.pid, spawn: () => spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] }) };
}

// ----------------------------------------------------------------------------------- bare relay

/**
 * bench/bare-tunnel.ts as plain JavaScript, so its processes run on bare Node as the helper
 * (dist/wharf.cjs) and the agent (dist/agent) do, without tsx in their memory; its packages
 * are imported from node_modules where they are (ssh2 with its native add-on, as the agent has it).
 */
async function compileBareTunnel(dir: string): Promise<string> {
  const outfile = join(dir, 'bare-tunnel.mjs');
  await build({
    entryPoints: [join(root, 'bench', 'bare-tunnel.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'packages-where-they-are',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, async (args) => {
            if (args.path.startsWith('node:') || args.pluginData === 'inner') return undefined;
            const found = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'inner' });
            if (found.errors.length > 0) return { errors: found.errors };
            return { path: pathToFileURL(found.path).href, external: true };
          });
        },
      },
    ],
  });
  return outfile;
}

type Bare = { forward: Ends; reverse: Ends; agent: ChildProcess; pids: number[]; spawnClient(): ChildProcess };

async function prepareBare(endpoint: Endpoint): Promise<Bare> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-bare-tunnel-'));
  const children: ChildProcess[] = [];
  cleanups.push(async () => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  });
  const script = await compileBareTunnel(dir);
  const run = (...args: string[]) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    return child;
  };
  const socketPath = join(dir, 'agent.sock');
  const agent = run('agent', socketPath);
  await waitForOutput(agent, /bare agent ready/, 'bare agent');
  const relay = run('relay', socketPath);
  const [, relayPort] = await waitForOutput(relay, /bare relay listening on (\d+)/, 'bare relay');
  const { forward, reverse } = await freeEnds();
  const rules = JSON.stringify({
    forward: [
      { localPort: forward.sink, host: '127.0.0.1', remotePort: endpoint.sink },
      { localPort: forward.echo, host: '127.0.0.1', remotePort: endpoint.echo },
    ],
    reverse: [
      { remotePort: reverse.sink, localPort: endpoint.sink },
      { remotePort: reverse.echo, localPort: endpoint.echo },
    ],
  });
  return { forward, reverse, agent, pids: [relay.pid!, agent.pid!], spawnClient: () => run('client', relayPort, rules) };
}

// ------------------------------------------------------------------------------------------- run

/** Stopped at the end in reverse order, whatever happened. */
let cleanups: Array<() => Promise<void>> = [];

type Measured = { fwd: Transfer[]; rev: Transfer[]; rttFwd: number[]; rttRev: number[] };
const emptyMeasured = (): Measured => ({ fwd: [], rev: [], rttFwd: [], rttRev: [] });

/** Memory of a path's two tunnel ends: idle, with HELD connections open, and after they closed. */
type Memory = { idle: number; held: number; after: number };

async function measureMemory(path: Path, ends: { laptop: () => Promise<number[]>; workspace: () => Promise<number[]> }): Promise<{ laptop: Memory; workspace: Memory }> {
  const idle = { laptop: await settledRss(ends.laptop), workspace: await settledRss(ends.workspace) };
  const sockets = await holdConnections(path);
  const held = { laptop: await settledRss(ends.laptop), workspace: await settledRss(ends.workspace) };
  for (const socket of sockets) socket.destroy();
  await delay(500);
  const after = { laptop: await settledRss(ends.laptop), workspace: await settledRss(ends.workspace) };
  return {
    laptop: { idle: idle.laptop, held: held.laptop, after: after.laptop },
    workspace: { idle: idle.workspace, held: held.workspace, after: after.workspace },
  };
}

/** The control server process of `dataDir` (startWharfProcess keeps its child to itself). */
async function findServer(dataDir: string): Promise<number> {
  const found = (await processes()).find((p) => p.cmdline.includes('server/serve.ts') && p.cmdline.includes(dataDir));
  if (!found) throw new Error(`no server process found for ${dataDir}`);
  return found.pid;
}

type Paths = Record<'wharf' | 'ssh' | 'bare' | 'direct', Path>;

/** Interleaved rounds of every path, so a busy moment of the machine falls on all of them alike. */
async function measureTransfers(paths: Partial<Paths>, rounds = ROUNDS): Promise<Partial<Record<keyof Paths, Measured>>> {
  const entries = Object.entries(paths) as [keyof Paths, Path][];
  const results: Partial<Record<keyof Paths, Measured>> = {};
  // A first transfer of each, not measured: connections, JIT and buffers warm.
  for (const [name, path] of entries) {
    results[name] = emptyMeasured();
    await bulk(path.forward.sink);
    await bulk(path.reverse.sink);
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, path] of entries) {
      results[name]!.fwd.push(await bulk(path.forward.sink, path.pids));
      results[name]!.rev.push(await bulk(path.reverse.sink, path.pids));
    }
  }
  // Round trips interleaved too: measured one path after another, the path measured first (right
  // after the last bulk transfers) read 0.03–0.07 ms slower than in a run of its own.
  for (let round = 0; round < RTT_ROUNDS; round++) {
    const warmup = round === 0 ? RTT_WARMUP_FIRST : RTT_WARMUP;
    for (const [name, path] of entries) {
      results[name]!.rttFwd.push(...(await latency(path.forward.echo, warmup)));
      results[name]!.rttRev.push(...(await latency(path.reverse.echo, warmup)));
    }
  }
  return results;
}

export async function run(): Promise<BenchRow[]> {
  cleanups = [];
  taken.clear();
  const load = loadavg()[0].toFixed(1);
  // The server runs agents from dist/agent and the helper is dist/wharf.cjs: built when stale, as the tests do.
  await exec(process.execPath, [join(root, 'scripts', 'build.mjs'), '--if-stale', 'agent', 'helper', 'executable'], { cwd: root });
  installed = (await readFile(EXECUTABLE).then(() => true, () => false)) ? EXECUTABLE : BUNDLE;
  const helperName = installed === EXECUTABLE ? 'the single executable (wharf-linux-x64, with ssh2\'s native ciphers)' : 'the JavaScript bundle on node (no native add-on)';
  // "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 …" on stderr.
  const openSshName = (await exec('ssh', ['-V'])).stderr.trim().split(/[\s,]/)[0].replace('_', ' ');
  try {
    const endpoint = await startEndpoint();
    cleanups.push(endpoint.stop);
    const direct: Path = { forward: endpoint, reverse: endpoint, pids: async () => [], stop: async () => {} };

    const setup = await prepareWharf(endpoint);
    cleanups.push(() => setup.wharf.stop());
    const openssh = await prepareOpenSsh(endpoint);
    const bare = await prepareBare(endpoint);

    // Start-up: spawn → every rule listening, alternated between the three.
    const starts = { wharf: [] as number[], ssh: [] as number[], bare: [] as number[] };
    for (let i = 0; i < STARTS; i++) {
      for (const [name, ends, start] of [
        ['wharf', setup, () => spawnWharfUp(setup)],
        ['ssh', openssh, openssh.spawn],
        ['bare', bare, bare.spawnClient],
      ] as const) {
        const { ms, child } = await timeToListening(start, [ends.forward, ends.reverse], `${name} start ${i + 1}`);
        starts[name].push(ms);
        await stopChild(child);
        await released(ends.reverse);
      }
    }

    // One long session of each for the rest.
    const wharfUp = await startWharfUp(setup);
    cleanups.push(wharfUp.stop);
    const agentPid = await findAgent(setup.wharf.dataDir);
    const serverPid = await findServer(setup.wharf.dataDir);
    const wharfPath: Path = { ...wharfUp, pids: async () => [wharfUp.helper.pid!, serverPid, agentPid] };
    const sshClient = openssh.spawn();
    const sshOutput = collectOutput(sshClient);
    cleanups.push(() => stopChild(sshClient));
    await timeToListening(() => sshClient, [openssh.forward, openssh.reverse], 'ssh');
    // sshd's side is the listener's children: the connection's privileged monitor and its session process.
    const sshPath: Path = { ...openssh, pids: async () => [sshClient.pid!, ...(await descendants(openssh.sshdPid))], stop: () => stopChild(sshClient) };
    const bareClient = bare.spawnClient();
    await waitForOutput(bareClient, /bare client ready/, 'bare client');
    const barePath: Path = { ...bare, pids: async () => [bareClient.pid!, ...bare.pids], stop: () => stopChild(bareClient) };
    const cipher = /kex: server->client cipher: (\S+)/.exec(sshOutput())?.[1] ?? 'default cipher';
    const OPENSSH = `${openSshName} \`ssh -N -L/-R\` to a local sshd (${cipher})`;

    // Memory before any bulk transfer, so the figures are not a heap grown by 256 MiB going past.
    const wharfMemory = await measureMemory(wharfPath, { laptop: async () => [wharfUp.helper.pid!], workspace: async () => [agentPid] });
    const sshMemory = await measureMemory(sshPath, { laptop: async () => [sshClient.pid!], workspace: () => descendants(openssh.sshdPid) });
    const bareMemory = await measureMemory(barePath, { laptop: async () => [bareClient.pid!], workspace: async () => [bare.agent.pid!] });

    const results = (await measureTransfers({ wharf: wharfPath, ssh: sshPath, bare: barePath, direct })) as Record<keyof Paths, Measured>;
    if (wharfUp.helper.exitCode !== null) throw new Error(`wharf up exited during the run:\n${wharfUp.output()}`);
    if (/connection lost/.test(wharfUp.output())) throw new Error(`wharf up lost its connection during the run:\n${wharfUp.output()}`);

    // The JavaScript bundle (what runs where there is no executable: `node wharf.mjs`), on the
    // same server and workspace once the executable has stopped, beside the bare relay again.
    let bundle: Measured | undefined;
    if (installed !== BUNDLE) {
      await wharfUp.stop();
      await released(setup.reverse);
      const js = await startWharfUp(setup, BUNDLE);
      cleanups.push(js.stop);
      bundle = (await measureTransfers({ wharf: { ...js, pids: async () => [js.helper.pid!, serverPid, agentPid] }, bare: barePath }, 3)).wharf;
      await js.stop();
    }

    // ------------------------------------------------------------------------------------- rows
    const f1 = (n: number) => n.toFixed(1);
    const f2 = (n: number) => n.toFixed(2);
    const f3 = (n: number) => n.toFixed(3);
    const rows: BenchRow[] = [];
    const mib = `${BULK_BYTES / 2 ** 20} MiB`;
    for (const [dir, key, what] of [
      ['forward rule (`ssh -L`)', 'fwd', 'laptop → workspace'],
      ['reverse rule (`ssh -R`)', 'rev', 'workspace → laptop'],
    ] as const) {
      const scenario = `${dir}: ${mib} ${what} on one connection, \`wharf up\` with ${helperName} (load average ${load} at the start)`;
      const metric = `throughput (MB/s, median of ${ROUNDS})`;
      const mbps = (name: keyof Paths) => median(results[name][key].map((t) => t.mbps));
      // The total, and each process's share (the median of each, so they need not add up exactly).
      const cpu = (name: keyof Paths) => {
        const runs = results[name][key];
        const parts = runs[0].parts.map((_, i) => f1(median(runs.map((t) => t.parts[i]))));
        return `${f2(median(runs.map((t) => t.cpuPerGB)))} (${parts.join(' + ')})`;
      };
      const [w, s, b, d] = [mbps('wharf'), mbps('ssh'), mbps('bare'), mbps('direct')];
      const share = (n: number, of: number) => `${f1(n)} (${f2(n / of)}×)`;
      rows.push({ scenario, metric, wharf: share(w, s), peerName: OPENSSH, peer: f1(s), goal: `≥ 0.8× OpenSSH (≥ ${f1(0.8 * s)})` });
      rows.push({ scenario, metric, wharf: share(w, b), peerName: BARE, peer: f1(b), goal: `within 5% of the bare relay (≥ ${f1(0.95 * b)})` });
      rows.push({ scenario, metric, wharf: f1(w), peerName: DIRECT, peer: f1(d) });
      const cpuMetric = 'CPU per GB moved (s, median): all the tunnel\'s processes (laptop side + relay + workspace side)';
      rows.push({ scenario, metric: cpuMetric, wharf: cpu('wharf'), peerName: `${OPENSSH}: ssh + sshd's processes`, peer: cpu('ssh') });
      rows.push({ scenario, metric: cpuMetric, wharf: cpu('wharf'), peerName: `${BARE}: client + relay + agent`, peer: cpu('bare') });
      if (bundle) {
        const jsScenario = `${dir}: ${mib} ${what}, \`wharf up\` with the JavaScript bundle on node (ssh2 with Node's crypto: no native add-on), after the executable`;
        const runs = bundle[key];
        const jsParts = runs[0].parts.map((_, i) => f1(median(runs.map((t) => t.parts[i]))));
        rows.push({ scenario: jsScenario, metric: `throughput (MB/s, median of ${runs.length})`, wharf: share(median(runs.map((t) => t.mbps)), b), peerName: BARE, peer: f1(b) });
        rows.push({ scenario: jsScenario, metric: cpuMetric, wharf: `${f2(median(runs.map((t) => t.cpuPerGB)))} (${jsParts.join(' + ')})`, peerName: `${BARE}: client + relay + agent`, peer: cpu('bare') });
      }
    }
    for (const [dir, key] of [
      ['forward rule', 'rttFwd'],
      ['reverse rule', 'rttRev'],
    ] as const) {
      const scenario = `${dir}: ${RTT_BYTES}-byte request → ${RTT_BYTES}-byte answer, ${RTT_ROUNDS} × ${RTT_SAMPLES} round trips, in rounds interleaved with the other paths, each on a connection of its own after ${RTT_WARMUP} (${RTT_WARMUP_FIRST} the first time)`;
      const metric = 'p50 / p99 round trip (ms)';
      const pp = (samples: number[]) => `${f3(percentile(samples, 50))} / ${f3(percentile(samples, 99))}`;
      const s50 = percentile(results.ssh[key], 50);
      rows.push({ scenario, metric, wharf: pp(results.wharf[key]), peerName: OPENSSH, peer: pp(results.ssh[key]), goal: `p50 ≤ OpenSSH's + 0.15 (${f3(s50 + 0.15)}); p99 < 2` });
      rows.push({ scenario, metric, wharf: pp(results.wharf[key]), peerName: BARE, peer: pp(results.bare[key]) });
      rows.push({ scenario, metric, wharf: pp(results.wharf[key]), peerName: DIRECT, peer: pp(results.direct[key]) });
    }
    const mem = (m: Memory) => `${f1(m.idle)} → ${f1(m.held)} → ${f1(m.after)}`;
    const memScenario = (who: string) => `${who}: RSS idle → ${HELD} connections open (half through each direction, each after a round trip) → closed again`;
    const memGoal = 'flat (100 open ≤ idle + 5 MiB)';
    const rss = 'RSS (MiB), settled';
    rows.push({ scenario: memScenario('helper (laptop side)'), metric: rss, wharf: mem(wharfMemory.laptop), peerName: `${openSshName} ssh client`, peer: mem(sshMemory.laptop), goal: memGoal });
    rows.push({ scenario: memScenario('helper (laptop side)'), metric: rss, wharf: mem(wharfMemory.laptop), peerName: 'bare relay client (node, ssh2 + ws)', peer: mem(bareMemory.laptop) });
    rows.push({ scenario: memScenario('workspace agent'), metric: rss, wharf: mem(wharfMemory.workspace), peerName: "sshd (the connection's processes)", peer: mem(sshMemory.workspace), goal: memGoal });
    rows.push({ scenario: memScenario('workspace agent'), metric: rss, wharf: mem(wharfMemory.workspace), peerName: 'bare relay agent (node, ssh2)', peer: mem(bareMemory.workspace) });
    rows.push({ scenario: 'helper, connected and idle (no connection open yet)', metric: rss, wharf: f1(wharfMemory.laptop.idle), peerName: 'bare relay client (node, ssh2 + ws)', peer: f1(bareMemory.laptop.idle) });
    const startScenario = 'start → every rule listening (2 forward, 2 reverse; each port probed every 5 ms)';
    const startMetric = `time (ms), median of ${STARTS}`;
    rows.push({ scenario: startScenario, metric: startMetric, wharf: median(starts.wharf).toFixed(0), peerName: `${openSshName} \`ssh -N -L/-R\``, peer: median(starts.ssh).toFixed(0) });
    rows.push({ scenario: startScenario, metric: startMetric, wharf: median(starts.wharf).toFixed(0), peerName: 'bare relay client', peer: median(starts.bare).toFixed(0) });
    return rows;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: Error) => console.error(`tunnel bench cleanup: ${err.message}`));
    cleanups = [];
  }
}

runWhenMain(import.meta.url, run);
