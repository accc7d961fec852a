import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { engineRequest, ensureRunnerImage, requireEngine, type Engine } from './support/images.ts';
import { ensureDindImage, ensureServerImage, fileLog, REPO_ROOT, type ServerImage } from './support/server-image.ts';
import { ensureBusyboxWorkspaceImage } from './support/workspace-images.ts';

/**
 * The server image (Dockerfile) and compose.yaml, as far as these machines allow (issue 17): the
 * image is built on the test dockerd from locally made bases (test/support/server-image.ts: no
 * registry here), started, and put through the foundation smoke test on 127.0.0.1 — health,
 * login, a workspace, a file written and read back — on the process driver and on the docker
 * driver (the server in the image filling the runtime volume from its own node, `ldd` and agent).
 * The test dockerd has no bridge (`--bridge=none`), so the containers use the host's network and
 * the server listens on 127.0.0.1:<free port> rather than on a published port. compose.yaml is
 * checked with docker-compose's own parser (`docker-compose config`: Debian's docker-compose 1.29,
 * which validates against the compose-spec schema it ships), then brought up with `docker-compose
 * up` and put through the same smoke test plus a remote deploy (see that test for the two things
 * it has to change on these machines).
 */

const BUILD_LOG = '/tmp/wharf-server-image-build.log';
const TOKEN = `image-${randomBytes(12).toString('hex')}`;

let engine: Engine;
let image: ServerImage;
const containers: string[] = [];

async function json<T>(res: { status: number; body: Buffer }, what: string, expected = 200): Promise<T> {
  if (res.status !== expected) throw new Error(`${what}: ${res.status} ${res.body.toString()}`);
  return (res.body.length ? JSON.parse(res.body.toString('utf8')) : undefined) as T;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A container's output: the engine multiplexes stdout and stderr in 8-byte-headed frames (no tty). */
async function logsOf(id: string): Promise<string> {
  const res = await engineRequest(engine, 'GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=200`);
  const out: Buffer[] = [];
  let at = 0;
  while (at + 8 <= res.body.length) {
    const size = res.body.readUInt32BE(at + 4);
    out.push(res.body.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

type ContainerSpec = { Cmd?: string[]; Entrypoint?: string[]; Env?: string[]; HostConfig?: Record<string, unknown> };

async function startContainer(spec: ContainerSpec): Promise<string> {
  const name = `wharf-image-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const created = await json<{ Id: string }>(
    await engineRequest(engine, 'POST', `/containers/create?name=${name}`, Buffer.from(JSON.stringify({ Image: image.name, ...spec, HostConfig: { NetworkMode: 'none', ...spec.HostConfig } })), { 'content-type': 'application/json' }),
    'create container',
    201,
  );
  containers.push(created.Id);
  await json(await engineRequest(engine, 'POST', `/containers/${created.Id}/start`), 'start container', 204);
  return created.Id;
}

/** Runs a one-off container to its end: its exit code and output. */
async function runToEnd(spec: ContainerSpec): Promise<{ code: number; output: string }> {
  const id = await startContainer(spec);
  const waited = await json<{ StatusCode: number }>(await engineRequest(engine, 'POST', `/containers/${id}/wait`), 'wait for container');
  return { code: waited.StatusCode, output: await logsOf(id) };
}

type Inspect = { State: { Running: boolean; ExitCode: number; Health?: { Status: string } } };
const inspect = async (id: string) => json<Inspect>(await engineRequest(engine, 'GET', `/containers/${id}/json`), 'inspect container');

/** Waits for a condition, failing with `describe()` once the deadline passes. */
async function waitFor(what: string, check: () => Promise<boolean>, describe: () => Promise<string>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000}s:\n${await describe()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts the image's server on 127.0.0.1:<port> (host network) and waits until it answers /healthz. */
async function startServerContainer(args: string[], extra: { Env?: string[]; HostConfig?: Record<string, unknown> } = {}): Promise<{ id: string; url: string }> {
  const port = await freePort();
  const id = await startContainer({
    Cmd: ['serve', ...args],
    Env: ['WHARF_HOST=127.0.0.1', `WHARF_PORT=${port}`, `WHARF_TOKEN=${TOKEN}`, ...(extra.Env ?? [])],
    HostConfig: { NetworkMode: 'host', Init: true, ...extra.HostConfig },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `the server in ${image.name} answering ${url}/healthz`,
    async () => {
      const state = await inspect(id);
      if (!state.State.Running) throw new Error(`the server container exited (${state.State.ExitCode}):\n${await logsOf(id)}`);
      return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    },
    () => logsOf(id),
  );
  return { id, url };
}

const api = (url: string, path: string, init: RequestInit & { json?: unknown } = {}) => {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization') && !headers.has('cookie')) headers.set('authorization', `Bearer ${TOKEN}`);
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  return fetch(`${url}${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
};

/** The foundation smoke test: health, login, a workspace, a file written and read back. */
async function smokeTest(url: string, workspace: string, driver: string, alsoInWorkspace?: () => Promise<void>): Promise<void> {
  const health = await fetch(`${url}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ ok: true });
  expect(health.headers.get('x-wharf-version')).toMatch(/^\d+\.\d+\.\d+/);

  // Login as a browser does: the session cookie then opens the web UI.
  expect((await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'wrong' }) })).status).toBe(401);
  const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
  expect(login.status).toBe(200);
  const session = login.headers.getSetCookie().find((c) => c.startsWith('wharf_session='));
  expect(session).toBeDefined();
  const page = await fetch(`${url}/`, { headers: { cookie: session!.split(';')[0], accept: 'text/html' } });
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(/<script[^>]+src="\/assets\//);
  expect((await fetch(`${url}/api/workspaces`)).status).toBe(401);

  const created = await api(url, '/api/workspaces', { method: 'POST', json: { name: workspace } });
  const body = (await created.json()) as { id: string; status: string; driver: string; statusReason?: string };
  expect(created.status, JSON.stringify(body)).toBe(201);
  expect(body).toMatchObject({ id: workspace, status: 'running', driver });

  const text = `written through the image ${randomBytes(8).toString('hex')}\n`;
  const put = await api(url, `/api/workspaces/${workspace}/files/hello.txt`, { method: 'PUT', body: text });
  expect(put.status, await put.clone().text()).toBeLessThan(300);
  const got = await api(url, `/api/workspaces/${workspace}/files/hello.txt`);
  expect(got.status).toBe(200);
  expect(await got.text()).toBe(text);
  await alsoInWorkspace?.();

  const removed = await api(url, `/api/workspaces/${workspace}`, { method: 'DELETE' });
  expect(removed.status).toBe(204);
}

beforeAll(async () => {
  engine = requireEngine('docker');
  const log = await fileLog(BUILD_LOG);
  image = await ensureServerImage(engine, log).catch((err: Error) => {
    throw new Error(`${err.message}\n(build log: ${BUILD_LOG})`);
  });
  process.stdout.write(`server image ${image.name}: ${image.source} in ${image.seconds.toFixed(1)}s, ${(image.sizeBytes / 1e6).toFixed(0)} MB (log: ${BUILD_LOG})\n`);
}, 20 * 60_000);

afterAll(async () => {
  for (const id of containers) await engineRequest(engine, 'DELETE', `/containers/${id}?force=1&v=1`).catch(() => {});
});

describe('server image', () => {
  it('runs as its own non-root user, with the plain `wharf` command as entrypoint and `serve` by default', async () => {
    const info = await json<{ Config: { User: string; Entrypoint: string[]; Cmd: string[]; ExposedPorts: Record<string, unknown>; Healthcheck?: { Test: string[] } } }>(
      await engineRequest(engine, 'GET', `/images/${encodeURIComponent(image.name)}/json`),
      'inspect image',
    );
    expect(info.Config.User).toBe('wharf');
    expect(info.Config.Entrypoint).toEqual(['wharf']);
    expect(info.Config.Cmd).toEqual(['serve']);
    expect(Object.keys(info.Config.ExposedPorts)).toEqual(['8080/tcp']);
    expect(info.Config.Healthcheck?.Test.join(' ')).toContain('/healthz');
    // The size docs/deploy-server.md reports (about 380 MB: Debian minbase with node and npm, plus wharf).
    expect(image.sizeBytes).toBeLessThan(450e6);

    // Any other command is the helper, as `docker run IMAGE agent …` needs.
    const version = await runToEnd({ Cmd: ['--version'] });
    expect(version.output.trim()).toMatch(/^wharf \d+\.\d+\.\d+$/);
    expect(version.code).toBe(0);
    // What the docker driver's runtime volume is made of, present and runnable as the wharf user.
    const probe = await runToEnd({ Entrypoint: ['sh', '-c'], Cmd: ['id -u && ldd "$(command -v node)" >/dev/null && ls /opt/wharf/dist/agent /opt/wharf/dist && test -w /data && test ! -w /opt/wharf && /lib64/ld-linux-x86-64.so.2 --list-tunables'] });
    expect(probe.code, probe.output).toBe(0);
    expect(probe.output).toMatch(/^10001\n/);
    expect(probe.output).toContain('agent.cjs');
    // The agent's code cache was made in the image, by the node the image runs.
    expect(probe.output).toMatch(/agent-bundle-[0-9a-f]+\.cjs\.v8-cache/);
    expect(probe.output).toContain('pty.node');
    expect(probe.output).toContain('wharf-linux-x64');
    // glibc keeps up to 64 MiB of freed heap in the server (Dockerfile, scripts/start.sh: a relay's
    // buffers otherwise fault in every page they pass through): the image's environment says so,
    // and the image's own glibc reads it (ld.so reports the tunables it runs programs with).
    expect(probe.output).toContain('glibc.malloc.trim_threshold: 0x4000000 ');
  });

  it('passes the smoke test on the process driver, and reports healthy to the engine', async () => {
    const { id, url } = await startServerContainer([]);
    await smokeTest(url, 'image-smoke', 'process');

    // The helper's downloads, as the image serves them, match their checksums.
    const sums = await (await fetch(`${url}/downloads/SHA256SUMS`)).text();
    expect(sums).toMatch(/ {2}wharf-linux-x64$/m);
    const mjs = Buffer.from(await (await fetch(`${url}/downloads/wharf.mjs`)).arrayBuffer());
    expect(sums).toContain(`${createHash('sha256').update(mjs).digest('hex')}  wharf.mjs`);
    expect(await (await fetch(`${url}/downloads/install.sh`)).text()).toContain(url);

    // The image's own HEALTHCHECK (every 15 s) turns the container healthy.
    await waitFor(
      'the container becoming healthy',
      async () => (await inspect(id)).State.Health?.Status === 'healthy',
      async () => JSON.stringify((await inspect(id)).State.Health),
      90_000,
    );
  }, 180_000);

  it('passes the smoke test on the docker driver: the runtime volume is filled from the image', async () => {
    const workspaceImage = await ensureBusyboxWorkspaceImage(engine);
    // The engine's socket, for the server only; its group lets the image's wharf user use it.
    const gid = statSync(engine.socketPath).gid;
    const before = new Set(await runtimeVolumes());
    const dataDir = `/data/run-${randomBytes(4).toString('hex')}`;
    const { url } = await startServerContainer(['--driver', 'docker', '--docker-host', 'unix:///var/run/docker.sock', '--workspace-image', workspaceImage], {
      Env: [`WHARF_DATA_DIR=${dataDir}`],
      HostConfig: { Binds: [`${engine.socketPath}:/var/run/docker.sock`], GroupAdd: [String(gid)] },
    });
    try {
      await smokeTest(url, `image-smoke-${randomBytes(3).toString('hex')}`, 'docker');
    } finally {
      // The runtime volume this image's server made (one per build; nothing else uses it).
      for (const name of await runtimeVolumes()) if (!before.has(name)) await engineRequest(engine, 'DELETE', `/volumes/${name}`).catch(() => {});
    }
  }, 240_000);
});

async function runtimeVolumes(): Promise<string[]> {
  const list = await json<{ Volumes: Array<{ Name: string }> | null }>(await engineRequest(engine, 'GET', '/volumes'), 'list volumes');
  return (list.Volumes ?? []).map((v) => v.Name).filter((n) => n.startsWith('wharf-runtime-'));
}

describe('compose.yaml', () => {
  it('is a valid compose file (docker-compose config) with the server, a DinD engine, a data volume and health checks', async () => {
    const { stdout } = await promisify(execFile)('docker-compose', ['--file', join(REPO_ROOT, 'compose.yaml'), '--project-name', 'wharf', 'config'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`docker-compose config failed (on Debian: apt-get install docker-compose): ${err.stderr ?? err.message}`);
    });
    type Service = {
      image?: string;
      build?: { context: string };
      environment?: Record<string, string>;
      volumes?: string[];
      ports?: string[];
      healthcheck?: { test: string[] };
      depends_on?: Record<string, { condition: string }>;
      privileged?: boolean;
      init?: boolean;
    };
    const config = parseYaml(stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
    expect(Object.keys(config.services).sort()).toEqual(['docker', 'wharf']);
    const { wharf, docker } = config.services;

    expect(wharf.build?.context).toBe(REPO_ROOT);
    expect(wharf.init).toBe(true);
    expect(wharf.environment).toMatchObject({ WHARF_DRIVER: 'docker', WHARF_DOCKER_HOST: 'tcp://docker:2375', WHARF_BUILDER: 'tcp://docker:2375' });
    expect(wharf.environment?.WHARF_PUBLIC_URL).toBeTruthy();
    expect(wharf.volumes).toContain('wharf-data:/data:rw');
    // docker-compose 1.29 prints ports in the short form.
    expect(wharf.ports).toEqual(['127.0.0.1:8080:8080/tcp']);
    expect(wharf.healthcheck?.test.join(' ')).toContain('/healthz');
    expect(wharf.depends_on).toEqual({ docker: { condition: 'service_healthy' } });

    expect(docker.image).toMatch(/^docker:.*dind/);
    expect(docker.privileged).toBe(true);
    expect(docker.environment?.DOCKER_TLS_CERTDIR).toBe('');
    expect(docker.healthcheck?.test).toBeDefined();
    expect(docker.ports).toBeUndefined();
    expect(Object.keys(config.volumes).sort()).toEqual(['docker-data', 'wharf-data']);
  });

  it('comes up with `docker-compose up`: the server on the DinD engine passes the smoke test, and a remote deploy runs on that engine', async () => {
    const log = await fileLog('/tmp/wharf-compose-test.log');
    const dind = await ensureDindImage(engine, log).catch((err: Error) => {
      throw new Error(`${err.message}\n(log: /tmp/wharf-compose-test.log)`);
    });
    const [workspaceImage, runnerImage] = await Promise.all([ensureBusyboxWorkspaceImage(engine), ensureRunnerImage(engine, 'wharf/runner:latest')]);
    const port = await freePort();
    const project = `wharf-compose-test-${process.pid}`;
    const dir = await mkdtemp(join(tmpdir(), 'wharf-compose-'));
    const override = join(dir, 'compose.test.yaml');
    await writeFile(override, JSON.stringify(composeOverride(dind), null, 2));
    // What a team sets in .env (README): the token, where the host publishes the server, and the workspace image.
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DOCKER_HOST: engine.endpoint,
      WHARF_TOKEN: TOKEN,
      WHARF_LISTEN: `127.0.0.1:${port}`,
      WHARF_PUBLIC_URL: `http://127.0.0.1:${port}`,
      WHARF_WORKSPACE_IMAGE: workspaceImage,
    };
    const compose = (...args: string[]) =>
      promisify(execFile)('docker-compose', ['--file', join(REPO_ROOT, 'compose.yaml'), '--file', override, '--project-name', project, ...args], { cwd: REPO_ROOT, env, maxBuffer: 16 << 20 }).catch(
        (err: Error & { stderr?: string; stdout?: string }) => {
          throw new Error(`docker-compose ${args.join(' ')} failed: ${err.stderr ?? ''}${err.stdout ?? ''}${err.message}`);
        },
      );
    const containerOf = async (service: string) => (await compose('ps', '-q', service)).stdout.trim();
    const composeLogs = async () => (await compose('logs', '--no-color', '--tail', '80').catch((err: Error) => ({ stdout: err.message }))).stdout;
    try {
      // The server image is the one built above (`build: .` is not run again); `up` waits for the engine's health check.
      await compose('up', '--detach', '--no-build');
      const engineContainer = await containerOf('docker');
      const serverContainer = await containerOf('wharf');
      expect(engineContainer).not.toBe('');
      // The images a workspace and a deploy need, from the test engine into the DinD engine (no registry).
      for (const name of [workspaceImage, runnerImage]) await copyImageInto(name, engineContainer);

      const url = `http://127.0.0.1:${port}`;
      await waitFor(
        "the compose server's health check passing",
        async () => (await inspect(serverContainer)).State.Health?.Status === 'healthy',
        async () => `${JSON.stringify((await inspect(serverContainer)).State.Health)}\n${await composeLogs()}`,
        150_000,
      );
      await smokeTest(url, 'compose-smoke', 'docker', async () => {
        // A remote deploy: BuildKit on the DinD engine runs the command on a context packed from the workspace.
        const manifest = 'deploy:\n  remote: true\n  commands:\n    - name: list\n      command: echo "in $PWD as $WHO"; cat hello.txt\n';
        expect((await api(url, '/api/workspaces/compose-smoke/files/okteto.yml', { method: 'PUT', body: manifest })).status).toBeLessThan(300);
        // A variable reaches the runner through its one call back to the server (WHARF_DEPLOY_CALLBACK_URL, http://wharf:8080).
        const started = await api(url, '/api/workspaces/compose-smoke/deploys', { method: 'POST', json: { variables: { WHO: 'the compose callback' } } });
        expect(started.status, await started.clone().text()).toBe(202);
        const { id } = (await started.json()) as { id: string };
        type Run = { status: string; events: Array<{ type: string; text?: string; message?: string }> };
        let run: Run | undefined;
        await waitFor(
          'the remote deploy ending',
          async () => {
            run = (await (await api(url, `/api/workspaces/compose-smoke/deploys/${id}`)).json()) as Run;
            return run.status !== 'running';
          },
          async () => `${JSON.stringify(run?.events)}\n${await composeLogs()}`,
          120_000,
        );
        const output = run!.events.filter((e) => e.type === 'output').map((e) => e.text).join('');
        expect(run!.status, JSON.stringify(run!.events)).toBe('succeeded');
        expect(output).toContain('in /okteto/src as the compose callback');
        expect(output).toContain('written through the image');
        expect(run!.events.some((e) => e.type === 'phase' && /builder at tcp:\/\/docker:2375/.test(e.message ?? ''))).toBe(true);
        // The workspace is a container of the DinD engine, not of the test engine.
        const inner = await promisify(execFile)('docker', ['exec', engineContainer, 'docker', 'ps', '--format', '{{.Names}}'], { env });
        expect(inner.stdout).toMatch(/-compose-smoke$/m);
        const outer = await json<Array<{ Names: string[] }>>(await engineRequest(engine, 'GET', '/containers/json'), 'list containers');
        expect(outer.flatMap((c) => c.Names).filter((n) => n.endsWith('-compose-smoke'))).toEqual([]);
      });
    } finally {
      await compose('down', '--volumes', '--remove-orphans', '--timeout', '5').catch((err: Error) => process.stdout.write(`compose down: ${err.message}\n`));
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);

  /** Saves an image from the test engine into the DinD engine's `docker load`. */
  function copyImageInto(name: string, container: string): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const env = { ...process.env, DOCKER_HOST: engine.endpoint };
      const save = spawn('docker', ['save', name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const load = spawn('docker', ['exec', '-i', container, 'docker', 'load', '--quiet'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let errors = '';
      for (const child of [save, load]) {
        child.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
        child.on('error', reject);
      }
      save.stdout!.pipe(load.stdin!);
      load.stdout!.resume();
      load.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`docker save ${name} | docker exec ${container} docker load: exit ${code}: ${errors}`))));
    });
  }
});

/** The capabilities Docker knows by number (capability.h order), for the stand-in of `privileged` below. */
const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
];

/**
 * What the test changes in compose.yaml, and only that: the images (the server image built above
 * instead of `build: .`, the DinD stand-in instead of `docker:dind`) and, where it cannot work,
 * `privileged`. These VMs' capability bounding set lacks CAP_SYS_RESOURCE, and a privileged
 * container asks for every capability, so runc refuses to start it ("unable to apply caps"). Then
 * the engine service gets every capability this machine has, no seccomp or AppArmor profile, and
 * the cgroup hierarchy read-write, which is what privileged gives a nested dockerd (it makes its
 * containers' cgroups there). On a machine with the full set, compose.yaml's privileged stays.
 */
function composeOverride(dindImage: string): Record<string, unknown> {
  const bounding = BigInt(`0x${/^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`);
  const missing = CAPABILITIES.filter((_, bit) => !(bounding & (1n << BigInt(bit))));
  const engineService: Record<string, unknown> = { image: dindImage };
  if (missing.length) {
    Object.assign(engineService, {
      privileged: false,
      cap_add: CAPABILITIES.filter((name) => !missing.includes(name)),
      security_opt: ['seccomp=unconfined', 'apparmor=unconfined'],
      volumes: ['/sys/fs/cgroup:/sys/fs/cgroup:rw'],
    });
  }
  return { services: { wharf: { image: image.name }, docker: engineService } };
}

