/**
 * Remote deploy: packing a large context, sending it to the engine, and the time from a deploy
 * request to the first line a command prints, each beside a peer in the same run:
 *
 * - packing a synthetic repo (30,000 files, ~150 MB, plus an ignored node_modules of 20,000
 *   files) beside GNU tar with the same exclude, both written to a pipe; wharf's packer runs in
 *   a child process so its peak RSS is its own (measured for the full repo and for a tenth of it:
 *   memory must not grow with the context);
 * - the same context sent to dockerd with a one-line Dockerfile, beside the Docker CLI's own
 *   context transfer (`docker build`, classic builder: it sends the whole context as a tar);
 * - deploy request → first output line of the first command, beside `docker build` (BuildKit)
 *   of the same generated Dockerfile and context on the same engine.
 *
 * Run alone: `npx tsx bench/deploy.bench.ts`, or with the others: `npm run bench -- deploy`.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import WebSocket from 'ws';
import { packRunnerFiles, runnerBuildArgs } from '../server/deploy/server/index.ts';
import { createIgnoreMatcher, DEFAULT_PACK_LIMITS, packContext, CONTEXT_PREFIX } from '../server/okteto/index.ts';
import { ensureRunnerImage, makeFolder, RUNNER_IMAGE, type Engine } from '../test/support/images.ts';
import { createWorkspace, startTestServer } from '../test/support/server.ts';
import type { BenchRow } from './types.ts';

const exec = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const REPO = join(tmpdir(), 'wharf-bench-deploy-repo-v1');
const SRC_FILES = 30_000;
const IGNORED_FILES = 20_000;
const ROUNDS = 3;
/** Packing is short and cheap to repeat; five rounds make its median and peak memory steadier. */
const PACK_ROUNDS = 5;
/**
 * The transfer is mostly dockerd's own work (checksumming and unpacking 31k files, about 4 s of
 * CPU on 2 cores), so whatever else runs on the shared machine moves it by a second either way:
 * more rounds, in alternating order, so that a busy moment does not decide the row.
 */
const TRANSFER_ROUNDS = 5;
const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function engine(): Engine {
  const endpoint = process.env.WHARF_TEST_DOCKER_HOST;
  if (!endpoint?.startsWith('unix://')) throw new Error('WHARF_TEST_DOCKER_HOST is not set: run through "npm run bench" (it starts dockerd)');
  return { name: 'docker', endpoint, socketPath: endpoint.slice('unix://'.length) };
}

/** Deterministic pseudo-random sizes, so every run packs the same bytes. */
function sizes(count: number, average: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return Math.floor((state / 0x7fffffff) * average * 2);
  });
}

async function writeTree(base: string, count: number, average: number, seed: number): Promise<number> {
  const all = sizes(count, average, seed);
  let bytes = 0;
  for (let dir = 0; dir * 20 < count; dir++) {
    const folder = join(base, `pkg${dir % 50}`, `mod${dir}`);
    await mkdir(folder, { recursive: true });
    await Promise.all(
      all.slice(dir * 20, dir * 20 + 20).map((size, i) => {
        bytes += size;
        return writeFile(join(folder, `file${i}.txt`), Buffer.alloc(size, 97 + (i % 26)));
      }),
    );
  }
  return bytes;
}

/** The synthetic repo, generated once per machine (kept in the temp dir between runs). */
async function ensureRepo(): Promise<void> {
  if (existsSync(join(REPO, '.complete'))) return;
  await rm(REPO, { recursive: true, force: true });
  await writeTree(join(REPO, 'src'), SRC_FILES, 5000, 1);
  await writeTree(join(REPO, 'node_modules'), IGNORED_FILES, 2000, 2);
  await writeFile(join(REPO, '.oktetoignore'), 'node_modules\n');
  await writeFile(join(REPO, '.dockerignore'), 'node_modules\nDockerfile.bench\n');
  await writeFile(join(REPO, 'Dockerfile.bench'), `FROM ${RUNNER_IMAGE}\n`);
  await writeFile(join(REPO, '.complete'), '');
}

/* ---- child mode: one packing (and optional upload) in a fresh process, for its own peak RSS ---- */

async function childPack(folder: string, mode: string): Promise<void> {
  const send = mode !== 'pack';
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const packed = packContext({ root: folder, matcher: createIgnoreMatcher(['node_modules', '.dockerignore', 'Dockerfile.bench']), prefix: CONTEXT_PREFIX, ...DEFAULT_PACK_LIMITS });
  let bytes = 0;
  if (!send) {
    for await (const chunk of packed.stream) {
      bytes += (chunk as Buffer).length;
      // Done with it, as a socket writer is in its write callback.
      packed.recycle(chunk as Buffer);
    }
  } else {
    // A one-line Dockerfile in front of the context, as wharf sends a deploy's.
    const head = tar.pack();
    const headChunks: Buffer[] = [];
    head.on('data', (c: unknown) => headChunks.push(c as Buffer));
    const ended = new Promise<void>((r) => head.on('end', () => r()));
    head.entry({ name: 'Dockerfile', mode: 0o644 }, `FROM ${RUNNER_IMAGE}\n`);
    head.finalize();
    await ended;
    const prefix = Buffer.concat(headChunks).subarray(0, -1024);
    await new Promise<void>((resolve, reject) => {
      const path = mode === 'send-buildkit' ? '/build?version=2&q=1' : '/build?q=1';
      const req = request({ socketPath: engine().socketPath, method: 'POST', path, headers: { 'content-type': 'application/x-tar' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => (res.statusCode === 200 && !text.includes('errorDetail') ? resolve() : reject(new Error(`build failed: ${text.slice(-300)}`))));
      });
      req.on('error', reject);
      // Each block goes back to the packer once the socket has taken it (the write callback).
      req.write(prefix);
      packed.stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (!req.write(chunk, () => packed.recycle(chunk))) {
          packed.stream.pause();
          req.once('drain', () => packed.stream.resume());
        }
      });
      packed.stream.on('end', () => req.end());
      packed.stream.on('error', reject);
    });
  }
  await packed.summary;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${JSON.stringify({ seconds, bytes, maxRssMiB: process.resourceUsage().maxRSS / 1024, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
}

if (process.env.WHARF_DEPLOY_BENCH_CHILD) {
  const [mode, folder] = process.env.WHARF_DEPLOY_BENCH_CHILD.split(':');
  await childPack(folder, mode);
  process.exit(0);
}

type ChildResult = { seconds: number; bytes: number; maxRssMiB: number; cpuSeconds: number };

function packInChild(mode: 'pack' | 'send-classic' | 'send-buildkit', folder: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      cwd: root,
      env: { ...process.env, WHARF_DEPLOY_BENCH_CHILD: `${mode}:${folder}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`packing child failed (${code}): ${out}`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

/** GNU tar into a pipe (tar skips reading files when it writes to /dev/null itself). */
async function gnuTar(folder: string): Promise<{ seconds: number; maxRssMiB: number }> {
  const { stderr } = await exec('/usr/bin/time', ['-f', '%e %M', 'sh', '-c', `tar -C '${folder}' --exclude=./node_modules --exclude=./.dockerignore --exclude=./Dockerfile.bench -cf - . | cat > /dev/null`]);
  const [seconds, kib] = stderr.trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds, maxRssMiB: kib / 1024 };
}

/** Wall time, and CPU time of the CLI process (user + system, from GNU time). */
async function dockerCliClassic(folder: string): Promise<{ seconds: number; cpuSeconds: number }> {
  const started = performance.now();
  const { stderr } = await exec('/usr/bin/time', ['-f', 'cpu %U %S', DOCKER_CLI, '-H', engine().endpoint, 'build', '-q', '-f', 'Dockerfile.bench', '.'], {
    cwd: folder,
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  const [user, system] = (/cpu ([\d.]+) ([\d.]+)/.exec(stderr)?.slice(1) ?? ['NaN', 'NaN']).map(Number);
  return { seconds, cpuSeconds: user + system };
}

async function tarVersion(): Promise<string> {
  const { stdout } = await exec('tar', ['--version']);
  return stdout.split('\n')[0].replace(/^tar \(GNU tar\) /, 'GNU tar ');
}

async function dockerVersion(): Promise<string> {
  const { stdout } = await exec(DOCKER_CLI, ['--version']);
  return `Docker CLI ${/version ([\d.]+)/i.exec(stdout)?.[1] ?? '?'}`;
}

async function packingRows(): Promise<BenchRow[]> {
  await ensureRepo();
  // The machine is shared (2 cores): say how busy it was, since both sides slow down with it.
  const loadAtStart = loadavg()[0].toFixed(1);
  const subset = join(REPO, 'src', 'pkg1');
  const full: Array<{ seconds: number; bytes: number; maxRssMiB: number }> = [];
  const small: number[] = [];
  const tarRuns: Array<{ seconds: number; maxRssMiB: number }> = [];
  // Warm the page cache first, so both read from memory.
  await gnuTar(REPO);
  for (let i = 0; i < PACK_ROUNDS; i++) {
    full.push(await packInChild('pack', REPO));
    tarRuns.push(await gnuTar(REPO));
    small.push((await packInChild('pack', subset)).maxRssMiB);
  }
  const gnu = await tarVersion();
  const wharfSeconds = median(full.map((r) => r.seconds));
  const tarSeconds = median(tarRuns.map((r) => r.seconds));
  const scenario = `pack ${SRC_FILES / 1000}k-file repo (${Math.round(full[0].bytes / 1e6)} MB tar) + ignored node_modules (${IGNORED_FILES / 1000}k files; load average ${loadAtStart} at the start)`;
  return [
    { scenario, metric: `time (s), median of ${PACK_ROUNDS}`, wharf: wharfSeconds.toFixed(2), peer: tarSeconds.toFixed(2), peerName: gnu, goal: '≤ 2× peer' },
    { scenario, metric: 'ratio to GNU tar', wharf: `${(wharfSeconds / tarSeconds).toFixed(1)}×`, peer: '1.0×', peerName: gnu, goal: '≤ 2×' },
    { scenario, metric: 'peak RSS (MiB), whole process', wharf: median(full.map((r) => r.maxRssMiB)).toFixed(0), peer: median(tarRuns.map((r) => r.maxRssMiB)).toFixed(0), peerName: gnu },
    {
      scenario: 'memory vs context size (packing 1/50 of the repo, then all of it)',
      metric: 'peak RSS (MiB): small → full',
      wharf: `${median(small).toFixed(0)} → ${median(full.map((r) => r.maxRssMiB)).toFixed(0)}`,
      peer: '',
      peerName: '(wharf only; the context grows 50×)',
    },
  ];
}

async function transferRows(): Promise<BenchRow[]> {
  const wharf: ChildResult[] = [];
  const docker: Array<{ seconds: number; cpuSeconds: number }> = [];
  const buildkit: number[] = [];
  // The one-line Dockerfile starts FROM the runner image: on a fresh engine it must be built first.
  await ensureRunnerImage(engine());
  // One untimed run of each first: the first build after others ran was often the slowest.
  await dockerCliClassic(REPO);
  await packInChild('send-classic', REPO);
  const loadAtStart = loadavg()[0].toFixed(1);
  // Alternated, and in turn first, so a busy moment of the machine hits both sides alike.
  for (let i = 0; i < TRANSFER_ROUNDS; i++) {
    if (i % 2 === 0) {
      wharf.push(await packInChild('send-classic', REPO));
      docker.push(await dockerCliClassic(REPO));
    } else {
      docker.push(await dockerCliClassic(REPO));
      wharf.push(await packInChild('send-classic', REPO));
    }
    buildkit.push((await packInChild('send-buildkit', REPO)).seconds);
    process.stderr.write(
      `deploy bench: transfer round ${i + 1}: wharf ${wharf[i].seconds.toFixed(2)} s (${wharf[i].cpuSeconds.toFixed(2)} s CPU), ` +
        `Docker CLI ${docker[i].seconds.toFixed(2)} s (${docker[i].cpuSeconds.toFixed(2)} s CPU), wharf BuildKit ${buildkit[i].toFixed(2)} s\n`,
    );
  }
  // Every BuildKit upload of the repo left a copy of it in the build cache; drop those copies.
  await new Promise<void>((resolve) => {
    request({ socketPath: engine().socketPath, method: 'POST', path: '/build/prune' }, (res) => res.resume().on('end', () => resolve()))
      .on('error', () => resolve())
      .end();
  });
  const scenario = `pack + send that context to dockerd, one-line Dockerfile (load average ${loadAtStart} at the start)`;
  const cli = `${await dockerVersion()} build`;
  const wins = wharf.filter((w, i) => w.seconds < docker[i].seconds).length;
  return [
    {
      scenario: `${scenario} (classic builder)`,
      metric: `time (s), median of ${TRANSFER_ROUNDS}; rounds wharf was faster`,
      wharf: `${median(wharf.map((w) => w.seconds)).toFixed(2)}; ${wins} of ${TRANSFER_ROUNDS}`,
      peer: median(docker.map((d) => d.seconds)).toFixed(2),
      peerName: cli,
      goal: '< peer',
    },
    {
      scenario: `${scenario} (classic builder)`,
      metric: 'client CPU (s), median: what it leaves the engine on 2 cores',
      wharf: median(wharf.map((w) => w.cpuSeconds)).toFixed(2),
      peer: median(docker.map((d) => d.cpuSeconds)).toFixed(2),
      peerName: cli,
    },
    {
      scenario: `${scenario} (BuildKit, /build?version=2 as deploys use)`,
      metric: `time (s), median of ${TRANSFER_ROUNDS}`,
      wharf: median(buildkit).toFixed(2),
      peer: '—',
      peerName: '(the CLI\'s BuildKit path sends nothing for a FROM-only Dockerfile)',
    },
  ];
}

/** POST deploy → first output event on the websocket, against `docker build` of the same files. */
async function firstLineRows(): Promise<BenchRow[]> {
  const docker = engine();
  await ensureRunnerImage(docker);
  const files: Record<string, string> = { 'okteto.yml': 'deploy:\n  remote: true\n  commands:\n    - name: first\n      command: echo first-line\n' };
  for (let i = 0; i < 200; i++) files[`app/file${i}.txt`] = `content ${i}\n`.repeat(20);
  const project = await makeFolder(files);
  const server = await startTestServer({ argv: ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE] });
  const wharf: number[] = [];
  const peer: number[] = [];
  const buildDir = await mkdtemp(join(tmpdir(), 'wharf-bench-build-'));
  try {
    await createWorkspace(server, 'bench', { seed: project });
    for (let i = 0; i < ROUNDS + 1; i++) {
      const started = performance.now();
      const res = await server.api('/api/workspaces/bench/deploys', { method: 'POST', json: {} });
      const { id } = (await res.json()) as { id: string };
      const elapsed = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/workspaces/bench/deploys/${id}/events`, { headers: { authorization: `Bearer ${server.token}` } });
        let first: number | undefined;
        ws.on('message', (data) => {
          const event = JSON.parse(String(data)) as { type: string; status?: string; message?: string };
          if (event.type === 'output' && first === undefined) first = performance.now() - started;
          if (event.type === 'done' && event.status !== 'succeeded') reject(new Error(`bench deploy failed: ${event.message}`));
        });
        ws.on('close', () => (first === undefined ? reject(new Error('no output')) : resolve(first)));
      });
      if (i > 0) wharf.push(elapsed / 1000);
    }

    // The same generated Dockerfile, runner and context, built by the Docker CLI with BuildKit.
    for (let i = 0; i < ROUNDS + 1; i++) {
      await rm(buildDir, { recursive: true, force: true });
      await mkdir(buildDir, { recursive: true });
      const generated = await packRunnerFiles({ runId: `bench-${i}`, image: RUNNER_IMAGE, kind: 'deploy', commands: [{ index: 1, name: 'first', command: 'echo first-line' }] });
      const context = packContext({ root: project, matcher: createIgnoreMatcher([]), prefix: CONTEXT_PREFIX, ...DEFAULT_PACK_LIMITS });
      const extract = spawn('tar', ['-x', '-C', buildDir], { stdio: ['pipe', 'ignore', 'inherit'] });
      extract.stdin.write(generated);
      context.stream.pipe(extract.stdin);
      await new Promise((r) => extract.on('close', r));
      const started = performance.now();
      const elapsed = await new Promise<number>((resolve, reject) => {
        const args = Object.entries(runnerBuildArgs({ runId: `bench-${i}-${Date.now()}`, nonce: `n${i}${Date.now()}`, secretsUrl: undefined })).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
        const child = spawn(DOCKER_CLI, ['-H', docker.endpoint, 'build', '--progress', 'plain', '--network', 'host', ...args, '.'], {
          cwd: buildDir,
          env: { ...process.env, DOCKER_BUILDKIT: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let first: number | undefined;
        let seen = '';
        const watch = (d: Buffer) => {
          seen += d;
          if (first === undefined && / 1 o first-line/.test(seen)) first = performance.now() - started;
        };
        child.stdout.on('data', watch);
        child.stderr.on('data', watch);
        child.on('close', (code) => (first !== undefined && code === 0 ? resolve(first) : reject(new Error(`docker build failed (${code}): ${seen.slice(-500)}`))));
      });
      if (i > 0) peer.push(elapsed / 1000);
    }
  } finally {
    await server.dispose();
    await rm(project, { recursive: true, force: true });
    await rm(buildDir, { recursive: true, force: true });
  }
  return [
    {
      scenario: 'deploy request → first output line (200-file project, BuildKit)',
      metric: 'time (s), median of 3 (after a warm-up run)',
      wharf: median(wharf).toFixed(2),
      peer: median(peer).toFixed(2),
      peerName: `${await dockerVersion()} build, same Dockerfile and context`,
      goal: '≈ peer',
    },
  ];
}

export async function run(): Promise<BenchRow[]> {
  engine();
  // `WHARF_DEPLOY_BENCH_ONLY=pack|transfer|first-line` runs one scenario (when tuning one).
  const only = process.env.WHARF_DEPLOY_BENCH_ONLY;
  const rows: BenchRow[] = [];
  if (!only || only === 'pack') rows.push(...(await packingRows()));
  if (!only || only === 'transfer') rows.push(...(await transferRows()));
  if (!only || only === 'first-line') rows.push(...(await firstLineRows()));
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}` && !process.env.WHARF_DEPLOY_BENCH_CHILD) {
  const rows = await run();
  for (const r of rows) console.log(`${r.scenario} | ${r.metric} | wharf ${r.wharf} | ${r.peerName} ${r.peer}${r.goal ? ` | goal ${r.goal}` : ''}`);
}
