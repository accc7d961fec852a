import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, realpathSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseBuilderEndpoint, runBuild } from '../../server/deploy/server/builder-client.ts';
import { createIgnoreMatcher, DEFAULT_PACK_LIMITS, packContext, parseIgnoreFile, patternsFor } from '../../server/okteto/index.ts';
import { engineRequest, type Engine } from './images.ts';

/**
 * The server image (the repository's Dockerfile) built without a registry, and kept between runs.
 *
 * Bases: the Dockerfile's defaults are `node:20-bookworm` (build stage) and
 * `node:20-bookworm-slim` (what runs), which cannot be pulled here. Stand-ins are made the way
 * those are: a Debian bookworm root file system from Debian's package archive (mmdebstrap,
 * variant minbase, without docs, man pages and locales) plus this machine's own node and npm
 * under /usr/local; the build base also gets g++, make, python3, node's headers and this machine's
 * CA bundle (npm ci in the build reaches the npm registry through it). They are imported into the
 * engine (`docker import`) under a tag that hashes what went into them.
 *
 * The server image is tagged with the hash of its build context (packed deterministically with
 * the repository's own .dockerignore matcher) and of the bases: an engine that has it already is
 * not asked to build. Every image is also saved under CACHE_DIR (the engine's data root is a tmpfs
 * that goes when it stops), so the next run on this machine loads it in seconds.
 */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CACHE_DIR = process.env.WHARF_TEST_IMAGE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'wharf', 'test-images');
export const SERVER_IMAGE_REPO = 'wharf-test/server';
const BASE_REPO = 'wharf-test/node';
/** Bumped when the recipe below changes in a way its inputs do not show. */
const RECIPE_VERSION = 1;

export type BuildLog = (line: string) => void;

type BaseSpec = { flavour: string; include: string[]; buildTools: boolean };
const BASES = {
  base: { flavour: '20-bookworm-slim', include: [], buildTools: false },
  build: { flavour: '20-bookworm', include: ['g++', 'make', 'python3'], buildTools: true },
} satisfies Record<string, BaseSpec>;

const DPKG_EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*'];

/** This machine's node installation, copied into the bases. */
function hostNode(): { node: string; npm: string; headers: string; caBundle: string } {
  const node = realpathSync(process.execPath);
  const prefix = dirname(dirname(node));
  return { node, npm: join(prefix, 'lib', 'node_modules', 'npm'), headers: join(prefix, 'include', 'node'), caBundle: '/etc/ssl/certs/ca-certificates.crt' };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function imageExists(engine: Engine, name: string): Promise<boolean> {
  return (await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`)).status === 200;
}

/** Throws with the engine's message when a JSON-lines answer (import, load) carries an error. */
function checkJsonLines(what: string, status: number, body: Buffer): void {
  const text = body.toString('utf8');
  if (status !== 200) throw new Error(`${what}: ${status} ${text}`);
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const message = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
      if (message.error || message.errorDetail) throw new Error(`${what}: ${message.errorDetail?.message ?? message.error}`);
    } catch (err) {
      if (err instanceof SyntaxError) continue;
      throw err;
    }
  }
}

function run(command: string, args: string[], log: BuildLog): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (line.trim()) log(`${command}: ${line}`);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => reject(new Error(`${command}: ${err.message} (on Debian: apt-get install ${command})`)));
    child.on('close', (code, signal) => (code === 0 ? resolvePromise() : reject(new Error(`${command} failed (${signal ?? `exit ${code}`}):\n${tail}`))));
  });
}

/** Keeps only `keep` among the cached files that start with `prefix`. */
async function pruneCache(prefix: string, keep: string): Promise<void> {
  for (const name of await readdir(CACHE_DIR).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && name !== keep) await rm(join(CACHE_DIR, name), { force: true });
  }
}

/** A base's tag: a hash of what goes into it (recipe, this machine's node, npm and CA bundle). */
async function baseName(spec: BaseSpec): Promise<{ name: string; tag: string; key: string }> {
  const host = hostNode();
  const key = createHash('sha256')
    .update(JSON.stringify({ RECIPE_VERSION, spec, DPKG_EXCLUDES, node: await sha256File(host.node), npm: JSON.parse(await readFile(join(host.npm, 'package.json'), 'utf8')).version, ca: spec.buildTools && existsSync(host.caBundle) ? await sha256File(host.caBundle) : null }))
    .digest('hex')
    .slice(0, 12);
  const tag = `${spec.flavour}-${key}`;
  return { name: `${BASE_REPO}:${tag}`, tag, key };
}

/** Imports (or makes, then imports) one base; answers its name. */
async function ensureBase(engine: Engine, spec: BaseSpec, log: BuildLog): Promise<string> {
  const host = hostNode();
  const { name, tag, key } = await baseName(spec);
  if (await imageExists(engine, name)) return name;
  const file = join(CACHE_DIR, `base-${spec.flavour}-${key}.tar`);
  if (!existsSync(file)) {
    await mkdir(CACHE_DIR, { recursive: true });
    const started = Date.now();
    log(`making the base ${name} with mmdebstrap (${file})`);
    const hook = [
      'set -e',
      'r="$1"',
      'mkdir -p "$r/usr/local/bin" "$r/usr/local/lib/node_modules" "$r/usr/local/include" "$r/usr/local/etc" "$r/etc/ssl/certs"',
      `cp ${JSON.stringify(host.node)} "$r/usr/local/bin/node"`,
      `cp -a ${JSON.stringify(host.npm)} "$r/usr/local/lib/node_modules/npm"`,
      'ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"',
      'ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"',
      ...(spec.buildTools
        ? [
            `cp -a ${JSON.stringify(host.headers)} "$r/usr/local/include/node"`,
            ...(existsSync(host.caBundle) ? [`cp ${JSON.stringify(host.caBundle)} "$r/etc/ssl/certs/ca-certificates.crt"`, 'echo "cafile=/etc/ssl/certs/ca-certificates.crt" > "$r/usr/local/etc/npmrc"'] : []),
          ]
        : []),
      'rm -rf "$r/var/lib/apt/lists/"* "$r/var/cache/apt/"*.bin',
    ].join('\n');
    await run(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--format=tar',
        ...(spec.include.length ? [`--include=${spec.include.join(',')}`] : []),
        ...DPKG_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
        `--customize-hook=${hook}`,
        'bookworm',
        `${file}.partial`,
      ],
      log,
    );
    await rename(`${file}.partial`, file);
    await pruneCache(`base-${spec.flavour}-`, `base-${spec.flavour}-${key}.tar`);
    log(`made ${file} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  const changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["node"]'].map((c) => `changes=${encodeURIComponent(c)}`).join('&');
  const res = await engineRequest(engine, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(BASE_REPO)}&tag=${tag}&${changes}`, createReadStream(file), { 'content-type': 'application/x-tar' });
  checkJsonLines(`importing ${name}`, res.status, res.body);
  return name;
}

/** The build context as `docker build` sends it: the checkout less what .dockerignore leaves out. */
export async function packServerContext(root = REPO_ROOT): Promise<Buffer> {
  const parsed = parseIgnoreFile(await readFile(join(root, '.dockerignore'), 'utf8'), '.dockerignore');
  if (!parsed.ok) throw new Error(parsed.error.message);
  const packed = packContext({ root, matcher: createIgnoreMatcher(patternsFor(parsed.value, 'deploy')), prefix: '', ...DEFAULT_PACK_LIMITS });
  const chunks: Buffer[] = [];
  for await (const chunk of packed.stream) chunks.push(Buffer.from(chunk as Buffer));
  await packed.summary;
  return Buffer.concat(chunks);
}

export type ServerImage = {
  name: string;
  /** How it was had: found on the engine, loaded from CACHE_DIR, or built now. */
  source: 'engine' | 'cache' | 'built';
  seconds: number;
  sizeBytes: number;
  bases: { base: string; build: string };
};

/** Builds the server image from the Dockerfile on `engine` unless it (or its saved copy) is there already. */
export async function ensureServerImage(engine: Engine, log: BuildLog): Promise<ServerImage> {
  const started = Date.now();
  const [base, build] = (await Promise.all([baseName(BASES.base), baseName(BASES.build)])).map((b) => b.name);
  const context = await packServerContext();
  const hash = createHash('sha256').update(base).update('\0').update(build).update('\0').update(context).digest('hex').slice(0, 16);
  const name = `${SERVER_IMAGE_REPO}:${hash}`;
  const file = join(CACHE_DIR, `server-${hash}.tar`);
  let source: ServerImage['source'] = 'engine';
  if (!(await imageExists(engine, name))) {
    if (existsSync(file)) {
      source = 'cache';
      log(`loading ${name} from ${file}`);
      const res = await engineRequest(engine, 'POST', '/images/load?quiet=1', createReadStream(file), { 'content-type': 'application/x-tar' });
      checkJsonLines(`loading ${file}`, res.status, res.body);
    } else {
      source = 'built';
      await Promise.all([ensureBase(engine, BASES.base, log), ensureBase(engine, BASES.build, log)]);
      const buildStarted = new Date();
      try {
        await buildImage(engine, name, context, { BASE: base, BUILD_BASE: build }, log);
      } finally {
        await releaseBuildSpace(engine, buildStarted, build, log);
      }
      await saveImage(engine, name, file, log);
      await pruneCache('server-', `server-${hash}.tar`);
    }
    await removeOtherServerImages(engine, name, log);
  }
  const inspect = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`);
  if (inspect.status !== 200) throw new Error(`${name} is not on the engine after ${source}: ${inspect.status} ${inspect.body.toString()}`);
  const sizeBytes = (JSON.parse(inspect.body.toString('utf8')) as { Size: number }).Size;
  return { name, source, seconds: (Date.now() - started) / 1000, sizeBytes, bases: { base, build } };
}

async function buildImage(engine: Engine, name: string, context: Buffer, buildArgs: Record<string, string>, log: BuildLog): Promise<void> {
  const endpoint = parseBuilderEndpoint(engine.endpoint);
  if (!endpoint.ok) throw new Error(endpoint.error);
  const started = Date.now();
  log(`building ${name} (context ${(context.length / 1e6).toFixed(1)} MB) with BuildKit`);
  const lines = new Map<string, string>();
  const outcome = await runBuild(
    { endpoint: endpoint.value, info: { engine: 'docker', version: 'test', buildkit: true }, body: Readable.from([context]), buildArgs, signal: new AbortController().signal },
    {
      onStep: (step) => log(`step: ${step}`),
      onOutput: (source, data) => {
        const text = (lines.get(source) ?? '') + data.toString('utf8');
        const parts = text.split('\n');
        lines.set(source, parts.pop() as string);
        for (const line of parts) log(`  ${line}`);
      },
      onWarning: (message) => log(`warning: ${message}`),
    },
  );
  if (!outcome.ok) throw new Error(`docker build failed: ${outcome.message}`);
  if (!outcome.imageId) throw new Error('docker build reported no image id');
  const [repo, tag] = name.split(':');
  const res = await engineRequest(engine, 'POST', `/images/${encodeURIComponent(outcome.imageId)}/tag?repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`);
  if (res.status !== 201) throw new Error(`tagging ${outcome.imageId} as ${name}: ${res.status} ${res.body.toString()}`);
  log(`built ${name} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

/** `docker save` into CACHE_DIR, streamed to disk. */
async function saveImage(engine: Engine, name: string, file: string, log: BuildLog): Promise<void> {
  await mkdir(CACHE_DIR, { recursive: true });
  const { request } = await import('node:http');
  await new Promise<void>((resolvePromise, reject) => {
    const req = request({ socketPath: engine.socketPath, method: 'GET', path: `/images/${encodeURIComponent(name)}/get` }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`saving ${name}: ${res.statusCode}`));
        return;
      }
      pipeline(res, createWriteStream(`${file}.partial`)).then(resolvePromise, reject);
    });
    req.on('error', reject);
    req.end();
  });
  await rename(`${file}.partial`, file);
  log(`saved ${name} to ${file} (${((await stat(file)).size / 1e6).toFixed(0)} MB)`);
}

/** A build log in a file (its path is printed when something fails), with each line also kept for the caller. */
export async function fileLog(path: string): Promise<BuildLog> {
  await writeFile(path, '');
  let chain = Promise.resolve();
  return (line: string) => {
    const stamped = `${new Date().toISOString()} ${line}\n`;
    chain = chain.then(() => appendFile(path, stamped)).catch(() => {});
  };
}

/** What this Dockerfile's build steps are called in BuildKit's cache records. */
const OUR_STEPS = /npm ci|node scripts\/build\.mjs|groupadd --system --gid 10001 wharf|^copy \/out /;

type CacheRecord = { ID: string; Parent?: string; Parents?: string[]; Description?: string; CreatedAt: string; InUse: boolean };

/**
 * The test engine keeps its data on a tmpfs with the vfs storage driver, where every build step
 * is a full copy of its file system (about 1 GB each for the build stage): once the image is
 * built, the cache records of this build (the steps above and the records they were made from,
 * created since the build started) and the build base go. A later build of the same bases then
 * runs the build stage again (about a minute), which is cheaper than holding gigabytes of memory.
 */
export async function releaseBuildSpace(engine: Engine, since: Date, buildBase: string, log: BuildLog): Promise<void> {
  const df = await engineRequest(engine, 'GET', '/system/df');
  if (df.status !== 200) return;
  const records = ((JSON.parse(df.body.toString('utf8')) as { BuildCache?: CacheRecord[] }).BuildCache ?? []).filter((r) => new Date(r.CreatedAt) >= since && !r.InUse);
  const byId = new Map(records.map((r) => [r.ID, r]));
  const ours = new Set<string>();
  const take = (record: CacheRecord | undefined) => {
    if (!record || ours.has(record.ID)) return;
    ours.add(record.ID);
    for (const parent of [record.Parent, ...(record.Parents ?? [])]) take(parent ? byId.get(parent) : undefined);
  };
  for (const record of records) if (OUR_STEPS.test(record.Description ?? '')) take(record);
  // The engine takes one value per filter: one prune per record.
  let released = 0;
  for (const id of ours) {
    const res = await engineRequest(engine, 'POST', `/build/prune?filters=${encodeURIComponent(JSON.stringify({ id: { [id]: true } }))}`);
    if (res.status === 200) released++;
    else log(`pruning build cache record ${id}: ${res.status} ${res.body.toString('utf8').slice(0, 200)}`);
  }
  if (ours.size > 0) log(`released ${released} of ${ours.size} build cache records of this build`);
  const removed = await engineRequest(engine, 'DELETE', `/images/${encodeURIComponent(buildBase)}`);
  log(`removed the build base ${buildBase} from the engine (kept in ${CACHE_DIR}): ${removed.status}`);
}

/** Server images of other contexts (an earlier checkout's) are of no more use on this engine. */
async function removeOtherServerImages(engine: Engine, keep: string, log: BuildLog): Promise<void> {
  const filters = encodeURIComponent(JSON.stringify({ reference: { [SERVER_IMAGE_REPO]: true } }));
  const list = await engineRequest(engine, 'GET', `/images/json?filters=${filters}`);
  if (list.status !== 200) return;
  for (const image of JSON.parse(list.body.toString('utf8')) as Array<{ RepoTags?: string[] }>) {
    for (const tag of image.RepoTags ?? []) {
      if (tag === keep) continue;
      const res = await engineRequest(engine, 'DELETE', `/images/${encodeURIComponent(tag)}`);
      log(`removed the older ${tag}: ${res.status}`);
    }
  }
}

export const DIND_IMAGE_REPO = 'wharf-test/dind';
/** Bumped when the recipe below changes. */
const DIND_RECIPE_VERSION = 1;

/**
 * A stand-in for compose.yaml's `docker:dind` (no registry here): Debian bookworm's `docker.io`
 * (dockerd with BuildKit, containerd, runc, the docker CLI that the service's health check runs)
 * on a minbase root file system, with an entrypoint that behaves as the official image's does for
 * compose.yaml's `command`: arguments that start with `-` are dockerd's, and dockerd then listens
 * on its unix socket and on plain TCP 2375 (DOCKER_TLS_CERTDIR is empty there). Cached like the
 * bases, under a tag that hashes the recipe.
 */
export async function ensureDindImage(engine: Engine, log: BuildLog): Promise<string> {
  const entrypoint = [
    '#!/bin/sh',
    '# wharf test stand-in for docker:dind (test/support/server-image.ts)',
    'set -e',
    'if [ "${1#-}" != "$1" ]; then',
    '  set -- dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 "$@"',
    'fi',
    'exec "$@"',
  ].join('\n');
  const include = ['docker.io'];
  const key = createHash('sha256').update(JSON.stringify({ DIND_RECIPE_VERSION, include, DPKG_EXCLUDES, entrypoint })).digest('hex').slice(0, 12);
  const name = `${DIND_IMAGE_REPO}:${key}`;
  if (await imageExists(engine, name)) return name;
  const file = join(CACHE_DIR, `dind-${key}.tar`);
  if (!existsSync(file)) {
    await mkdir(CACHE_DIR, { recursive: true });
    const started = Date.now();
    log(`making ${name} with mmdebstrap (${file})`);
    const hook = [
      'set -e',
      'r="$1"',
      'mkdir -p "$r/usr/local/bin"',
      `printf '%s\\n' ${entrypoint.split('\n').map((line) => `'${line.replace(/'/g, `'\\''`)}'`).join(' ')} > "$r/usr/local/bin/dockerd-entrypoint.sh"`,
      'chmod 755 "$r/usr/local/bin/dockerd-entrypoint.sh"',
      'rm -rf "$r/var/lib/apt/lists/"* "$r/var/cache/apt/"*.bin',
    ].join('\n');
    await run(
      'mmdebstrap',
      ['--variant=minbase', '--format=tar', `--include=${include.join(',')}`, ...DPKG_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`), `--customize-hook=${hook}`, 'bookworm', `${file}.partial`],
      log,
    );
    await rename(`${file}.partial`, file);
    await pruneCache('dind-', `dind-${key}.tar`);
    log(`made ${file} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  const changes = [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'ENTRYPOINT ["/usr/local/bin/dockerd-entrypoint.sh"]',
    'CMD []',
    'VOLUME /var/lib/docker',
  ]
    .map((c) => `changes=${encodeURIComponent(c)}`)
    .join('&');
  const res = await engineRequest(engine, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(DIND_IMAGE_REPO)}&tag=${key}&${changes}`, createReadStream(file), { 'content-type': 'application/x-tar' });
  checkJsonLines(`importing ${name}`, res.status, res.body);
  return name;
}
