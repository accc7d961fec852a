import { readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedEnvironment } from '../server/common/index.ts';
import { execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';
import { loginWharf, runProgram, userEnv, WHARF } from './support/wharf-cli.ts';

// The environment `wharf up` gives a service's local command, on the process driver: one
// variable won by each layer (docs/hybrid.md), each set the way a user sets it (the API, the
// CLI, a process in the workspace started with WHARF_SERVICE=api), read back from what the
// local command really got. Secret values never come back from a listing or a masked print.

const WS = 'envshop';
const SECRET = 'hunter2-secret-value';
let server: TestServer;
let home: string;
let project: string;
let shell: ssh2.Client;
let servicePid: number | undefined;

/** The helper's environment: the developer's own TERM and USER (the local layer). */
const helperEnv = () => userEnv(home, { TERM: 'term-from-laptop', USER: 'laptop-user' });

function wharf(args: string[], env: Record<string, string> = {}) {
  return runProgram(process.execPath, [WHARF, ...args], { cwd: project, env: { ...helperEnv(), ...env }, input: '' });
}

async function api(path: string, init: { method?: string; json?: unknown } = {}): Promise<Response> {
  const res = await server.api(path, init);
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  server = await startTestServer({ workspaces: [WS] });
  home = await server.tempDir('wharf-env-home-');
  project = await server.tempDir('wharf-env-project-');
  await loginWharf(server, home);
  shell = await sshThroughServer(server, WS);
  shell.on('error', () => {});

  // Each layer defines its own variable and every variable of the layers above it.
  await writeFile(
    join(project, 'okteto.yml'),
    `name: ${WS}
dev:
  api:
    mode: hybrid
    command: [${JSON.stringify(process.execPath)}, -e, "require('fs').writeFileSync('got.json', JSON.stringify(process.env))"]
    environment:
      TERM: term-from-manifest
      FROM_MANIFEST: manifest
  worker:
    mode: hybrid
    command: ["true"]
`,
  );
  // Spec (the workspace's own variables), through the API and the CLI.
  await api(`/api/workspaces/${WS}/env`, { method: 'PUT', json: { variables: { TERM: 'spec', FROM_MANIFEST: 'spec', FROM_CONTAINER: 'spec' } } });
  const set = await wharf(['workspace', 'env', 'set', WS, 'FROM_SPEC=spec']);
  expect(set.code, set.stderr).toBe(0);
  // Config sets: b-config is later in name order, so it wins over a-config.
  for (const name of ['b-config', 'a-config']) {
    await api(`/api/workspaces/${WS}/config-sets/${name}`, {
      method: 'PUT',
      json: { variables: { TERM: name, FROM_MANIFEST: name, FROM_CONTAINER: name, FROM_SPEC: name, FROM_CONFIG: name } },
    });
  }
  // Secret sets: b-secret by the CLI, its value taken from the helper's own environment (NAME
  // alone). A name a secret set defines is masked wherever it is shown, even when a higher layer
  // wins it, so the secret sets define only FROM_SECRET and, to show that rule, FROM_CONFIG.
  await api(`/api/workspaces/${WS}/secret-sets/a-secret`, { method: 'PUT', json: { variables: { FROM_CONFIG: 'a-secret', FROM_SECRET: 'a-secret' } } });
  const put = await wharf(['secret-set', 'put', WS, 'b-secret', 'FROM_SECRET', 'FROM_CONFIG=b-secret'], { FROM_SECRET: SECRET });
  expect(put.code, put.stderr).toBe(0);
  expect(put.stderr).not.toContain(SECRET);

  // The dev container: a process of the workspace started with WHARF_SERVICE=api, in its own
  // session so it outlives the SSH channel. SHELL is taken out of it, so SHELL comes from the
  // image layer (the agent's base environment).
  const vars = 'WHARF_SERVICE=api TERM=container FROM_MANIFEST=container FROM_CONTAINER=container';
  await execOver(shell, `setsid env -u SHELL ${vars} sleep 300 </dev/null >/dev/null 2>&1 &`);
  servicePid = await waitFor('the service process to be found', async () => {
    const resolved = (await (await api(`/api/workspaces/${WS}/hybrid/env?service=api`)).json()) as ResolvedEnvironment;
    return resolved.process?.pid;
  });
});

afterAll(async () => {
  if (servicePid) {
    try {
      process.kill(servicePid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  shell?.end();
  await server?.dispose();
});

/** Variable → the value and layer the local command must get it from. */
const EXPECTED: Record<string, { value: string; source: string }> = {
  TERM: { value: 'term-from-laptop', source: 'local' },
  USER: { value: 'laptop-user', source: 'local' },
  FROM_MANIFEST: { value: 'manifest', source: 'manifest' },
  FROM_CONTAINER: { value: 'container', source: 'dev-container' },
  FROM_SPEC: { value: 'spec', source: 'spec' },
  FROM_CONFIG: { value: 'b-config', source: 'config-set:b-config' },
  FROM_SECRET: { value: SECRET, source: 'secret-set:b-secret' },
};

describe('the environment of wharf up', () => {
  it('gives the local command each variable from the layer docs/hybrid.md says wins, and writes it to --write-env-file', async () => {
    const image = (await execOver(shell, 'printf %s "$SHELL"')).stdout;
    expect(image).toMatch(/^\//);
    const up = await wharf(['up', 'api', '--write-env-file', '.env.wharf']);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(new RegExp(`dev container: pid ${servicePid} \\(sleep 300\\)`));
    const got = JSON.parse(readFileSync(join(project, 'got.json'), 'utf8')) as Record<string, string>;
    for (const [name, { value }] of Object.entries(EXPECTED)) expect(got[name], name).toBe(value);
    expect(got.SHELL).toBe(image);
    expect(got.HOME).toBe(home);
    expect(got.WHARF_SERVICE).toBe('api');

    const envFile = readFileSync(join(project, '.env.wharf'), 'utf8');
    expect(statSync(join(project, '.env.wharf')).mode & 0o777).toBe(0o600);
    expect(envFile).toContain(`FROM_SECRET=${SECRET}\n`);
    expect(envFile).toContain('FROM_CONTAINER=container\n');
    expect(envFile).not.toMatch(/^(PATH|HOME|TERM|USER)=/m);
  }, 120_000);

  it('prints each value with its layer, secrets masked, in wharf env and in --json', async () => {
    const table = await wharf(['env', 'api']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout + table.stderr).not.toContain(SECRET);
    for (const [name, { value, source }] of Object.entries(EXPECTED)) {
      const shown = ['FROM_SECRET', 'FROM_CONFIG'].includes(name) ? '••••' : value;
      expect(table.stdout, name).toMatch(new RegExp(`^${name} +${source} +${shown}$`, 'm'));
    }
    expect(table.stdout).toMatch(/^SHELL +image +\//m);

    const json = await wharf(['env', 'api', '--json']);
    expect(json.stdout).not.toContain(SECRET);
    const resolved = JSON.parse(json.stdout) as ResolvedEnvironment;
    expect(resolved.process?.pid).toBe(servicePid);
    expect(resolved.variables.find((v) => v.name === 'FROM_SECRET')).toEqual({ name: 'FROM_SECRET', value: null, source: 'secret-set:b-secret', secret: true });
    // A name a secret set defines stays masked when a higher layer wins it.
    expect(resolved.variables.find((v) => v.name === 'FROM_CONFIG')).toMatchObject({ source: 'config-set:b-config', secret: true });

    const shown = await wharf(['env', 'api', '--show-secrets']);
    expect(shown.stdout).toMatch(new RegExp(`^FROM_SECRET +secret-set:b-secret +${SECRET}$`, 'm'));
  }, 60_000);

  it('says when no process serves the service, and the dev-container layer is empty', async () => {
    const worker = await wharf(['env', 'worker']);
    expect(worker.code, worker.stderr).toBe(0);
    expect(worker.stderr).toMatch(/no process in workspace "envshop" carries WHARF_SERVICE=worker, so the dev-container layer is empty/);
    expect(worker.stdout).toMatch(/^FROM_CONTAINER +spec +spec$/m);
  }, 60_000);

  it('never answers a secret value in a listing or a masked resolution', async () => {
    const listed = await (await api(`/api/workspaces/${WS}/secret-sets`)).text();
    expect(JSON.parse(listed)).toEqual({ sets: [{ name: 'a-secret', keys: ['FROM_CONFIG', 'FROM_SECRET'] }, { name: 'b-secret', keys: expect.arrayContaining(['FROM_SECRET']) }] });
    expect(listed).not.toContain(SECRET);
    expect(await (await api(`/api/workspaces/${WS}/hybrid/env?service=api`)).text()).not.toContain(SECRET);
    const cli = await wharf(['secret-set', 'list', WS]);
    expect(cli.stdout).toMatch(/^b-secret +FROM_SECRET +••••$/m);
    expect(cli.stdout + cli.stderr).not.toContain(SECRET);
    // A patch changes one key and keeps the others, so a secret can be changed without reading it.
    await api(`/api/workspaces/${WS}/secret-sets/b-secret`, { method: 'PATCH', json: { variables: { FROM_CONFIG: null } } });
    expect(((await (await api(`/api/workspaces/${WS}/secret-sets`)).json()) as { sets: Array<{ keys: string[] }> }).sets[1].keys).toEqual(['FROM_SECRET']);
    const bad = await server.api(`/api/workspaces/${WS}/config-sets/Bad_Name`, { method: 'PUT', json: { variables: {} } });
    expect(bad.status).toBe(400);
    expect((await server.api(`/api/workspaces/${WS}/config-sets/missing`, { method: 'DELETE' })).status).toBe(404);
  }, 60_000);
});

describe('the dev-container layer under bubblewrap', () => {
  let boxed: TestServer;
  let boxedShell: ssh2.Client;

  beforeAll(async () => {
    boxed = await startTestServer({ sandbox: 'bwrap', workspaces: ['boxed'] });
    boxedShell = await sshThroughServer(boxed, 'boxed');
    boxedShell.on('error', () => {});
  });

  afterAll(async () => {
    boxedShell?.end();
    // Stopping the workspace ends its sandbox, and every process in it.
    await boxed?.dispose();
  });

  it('is read by the agent inside the sandbox, from the process started with WHARF_SERVICE=api', async () => {
    await execOver(boxedShell, 'setsid env WHARF_SERVICE=api FROM_CONTAINER=boxed sleep 300 </dev/null >/dev/null 2>&1 &');
    const resolved = await waitFor('the boxed service process', async () => {
      const res = await boxed.api('/api/workspaces/boxed/hybrid/env?service=api');
      const body = (await res.json()) as ResolvedEnvironment;
      return body.process ? body : undefined;
    });
    expect(resolved.process?.command).toBe('sleep 300');
    expect(resolved.variables.find((v) => v.name === 'FROM_CONTAINER')).toMatchObject({ value: 'boxed', source: 'dev-container' });
    // Inside the sandbox the workspace is /workspace, and its processes see that.
    expect(resolved.variables.find((v) => v.name === 'WHARF_WORKSPACE')?.value).toBe((await execOver(boxedShell, 'printf %s "$WHARF_WORKSPACE"')).stdout);
  }, 120_000);
});
