import { ESLint } from 'eslint';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The layering of DESIGN.md is only worth something if the lint really refuses a wrong-way
// import: these snippets are linted in memory as if they sat at the given path of the tree.
const root = dirname(dirname(fileURLToPath(import.meta.url)));

type Problem = { rule: string | null; message: string };

let eslint: ESLint;

async function lint(filePath: string, code: string): Promise<Problem[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}/${filePath}` });
  return result.messages.map((m) => ({ rule: m.ruleId, message: m.message }));
}

function layering(problems: Problem[]): Problem[] {
  return problems.filter((p) => p.rule === 'wharf/layering');
}

describe('lint: layering from DESIGN.md', () => {
  beforeAll(() => {
    eslint = new ESLint({ cwd: root });
  });

  it('refuses a feature folder importing server/http, also from a subfolder, by re-export or dynamic import', async () => {
    const direct = await lint('server/sync/doc-store.ts', "import { createApp } from '../http/index.ts';\nexport const app = createApp;\n");
    expect(layering(direct)).toHaveLength(1);
    expect(layering(direct)[0].message).toMatch(/never import server\/http or server\/cli/);

    const deep = await lint('server/terminal/pty/screen.ts', "export { createApp } from '../../http/index.ts';\n");
    expect(layering(deep)).toHaveLength(1);

    const dynamic = await lint('server/deploy/runner.ts', "export async function load() {\n  return import('../http/app.ts');\n}\n");
    expect(layering(dynamic).map((p) => p.message)).toEqual([expect.stringMatching(/server\/http/)]);

    const typeQuery = await lint('server/hybrid/session.ts', "export type App = typeof import('../http/index.ts');\n");
    expect(layering(typeQuery)).toHaveLength(1);
  });

  it('judges the resolved path, not the import text: "../http" one folder deeper stays inside the feature', async () => {
    const inside = await lint('server/sync/store/doc.ts', "import { encode } from '../http/codec.ts';\nexport const e = encode;\n");
    expect(layering(inside)).toEqual([]);
  });

  it("refuses another feature's internals but accepts its index.ts and common's", async () => {
    const internals = await lint('server/sync/doc-store.ts', "import { createWorkspaceService } from '../workspace/service.ts';\nexport const s = createWorkspaceService;\n");
    expect(layering(internals)).toHaveLength(1);
    expect(layering(internals)[0].message).toMatch(/only through its public file server\/workspace\/index\.ts/);

    const allowed = await lint(
      'server/sync/doc-store.ts',
      "import type { WorkspaceService } from '../workspace/index.ts';\nimport { WharfError } from '../common/index.ts';\nexport type S = WorkspaceService;\nexport const E = WharfError;\n",
    );
    expect(allowed).toEqual([]);
  });

  it('refuses server/common importing anything of ours', async () => {
    const problems = await lint('server/common/paths.ts', "import type { ServerConfig } from '../config/index.ts';\nexport type C = ServerConfig;\n");
    expect(layering(problems)).toHaveLength(1);
    expect(layering(problems)[0].message).toMatch(/server\/common .* imports nothing of ours/);
  });

  it('lets only server/main.ts wire the concrete process driver', async () => {
    const code = "import { createProcessDriver } from './process/index.ts';\nexport const d = createProcessDriver;\n";
    const fromService = await lint('server/workspace/registry.ts', code);
    expect(layering(fromService).map((p) => p.message)).toEqual([expect.stringMatching(/concrete driver: only server\/main\.ts wires it/)]);

    const fromHttp = await lint('server/http/routes/extra.ts', "import { createProcessDriver } from '../../workspace/process/index.ts';\nexport const d = createProcessDriver;\n");
    expect(layering(fromHttp).map((p) => p.message).join('\n')).toMatch(/concrete driver/);

    const fromMain = await lint('server/main.ts', "import { createProcessDriver } from './workspace/process/index.ts';\nexport const d = createProcessDriver;\n");
    expect(layering(fromMain)).toEqual([]);
  });

  it('lets only server/main.ts wire the kubernetes driver, as the docker one', async () => {
    const fromHybrid = await lint('server/hybrid/server/env-service.ts', "import { createKubernetesDriver } from '../../workspace/kubernetes/index.ts';\nexport const d = createKubernetesDriver;\n");
    expect(layering(fromHybrid).map((p) => p.message).join('\n')).toMatch(/server\/workspace\/kubernetes is a concrete driver/);
    const fromDocker = await lint('server/workspace/docker/docker-driver.ts', "import { createKubernetesDriver } from '../kubernetes/index.ts';\nexport const d = createKubernetesDriver;\n");
    expect(layering(fromDocker).map((p) => p.message)).toEqual([expect.stringMatching(/kubernetes is a concrete driver/)]);
    const fromMain = await lint('server/main.ts', "import { createKubernetesDriver } from './workspace/kubernetes/index.ts';\nexport const d = createKubernetesDriver;\n");
    expect(layering(fromMain)).toEqual([]);
  });

  it('keeps process.env and process.argv inside server/config', async () => {
    const read = await lint('server/sync/doc-store.ts', 'export const home = process.env.HOME;\n');
    expect(read.map((p) => p.rule)).toEqual(['no-restricted-properties']);
    expect(read[0].message).toMatch(/Only server\/config reads process\.env/);

    const destructured = await lint('server/files/limits.ts', 'const { argv } = process;\nexport const args = argv;\n');
    expect(destructured.map((p) => p.rule)).toEqual(['no-restricted-properties']);

    const imported = await lint('server/hybrid/env.ts', "import { env } from 'node:process';\nexport const e = env;\n");
    expect(imported.map((p) => p.rule)).toEqual(['no-restricted-imports']);

    expect(await lint('server/config/extra.ts', 'export const home = process.env.HOME;\n')).toEqual([]);
    expect(await lint('test/extra.test.ts', 'export const home = process.env.HOME;\n')).toEqual([]);
  });

  it('lets the web UI import only types, and only from server/common', async () => {
    const value = await lint('web/src/lib/errors.ts', "import { WharfError } from '../../../server/common/index.ts';\nexport const E = WharfError;\n");
    expect(value.map((p) => p.rule)).toEqual(['@typescript-eslint/no-restricted-imports']);

    const typeOnly = await lint('web/src/lib/types.ts', "import type { Workspace } from '../../../server/common/index.ts';\nexport type W = Workspace;\n");
    expect(typeOnly).toEqual([]);

    const otherFolder = await lint('web/src/lib/types.ts', "import type { ServerConfig } from '../../../server/config/index.ts';\nexport type C = ServerConfig;\n");
    expect(layering(otherFolder).map((p) => p.message)).toEqual([expect.stringMatching(/only types from server\/common/)]);
  });
  it("keeps each process to its own half: an agent half never loads the server's, nor the server the agent's", async () => {
    const agentToServer = await lint('server/terminal/agent/hub.ts', "import { createShares } from '../server/shares.ts';\nexport const s = createShares;\n");
    expect(layering(agentToServer).map((p) => p.message)).toEqual([expect.stringMatching(/runs in the workspace agent and may not load code of the control server/)]);

    const httpToAgent = await lint('server/http/routes/terminals.ts', "import { createTerminalFeature } from '../../terminal/agent/index.ts';\nexport const f = createTerminalFeature;\n");
    expect(layering(httpToAgent).map((p) => p.message)).toEqual([expect.stringMatching(/runs in the control server and may not load code of the workspace agent/)]);

    const sharedTop = await lint('server/sync/envelope.ts', "import { relay } from './server/doc-relay.ts';\nexport const r = relay;\n");
    expect(layering(sharedTop).map((p) => p.message)).toEqual([expect.stringMatching(/shared top of server\/sync .* may not import its own server\/ half/)]);

    const halves = await lint(
      'server/deploy/server/runs.ts',
      "import { TERMINAL_SUBSYSTEM } from '../../terminal/index.ts';\nimport type { TerminalService } from '../../terminal/server/index.ts';\nexport const t = TERMINAL_SUBSYSTEM;\nexport type T = TerminalService;\n",
    );
    expect(halves).toEqual([]);

    const internals = await lint('server/deploy/server/runs.ts', "import { hub } from '../../terminal/server/hub.ts';\nexport const h = hub;\n");
    expect(layering(internals).map((p) => p.message)).toEqual([expect.stringMatching(/reached only through its public file/)]);

    const agentRoot = await lint('server/agent-main.ts', "import { createTerminalFeature } from './terminal/agent/index.ts';\nexport const f = createTerminalFeature;\n");
    expect(layering(agentRoot)).toEqual([]);
  });

  it('keeps each process\'s packages in its own half: no pty or watcher in the server, no HTTP framework or protobuf in the agent, neither in shared code', async () => {
    const ptyInServer = await lint('server/terminal/server/hub.ts', "import { spawn } from 'node-pty';\nexport const s = spawn;\n");
    expect(layering(ptyInServer).map((p) => p.message)).toEqual([expect.stringMatching(/node-pty belongs to the workspace agent.*of the other process/)]);
    const watcherShared = await lint('server/sync/envelope.ts', "import chokidar from 'chokidar';\nexport const c = chokidar;\n");
    expect(layering(watcherShared).map((p) => p.message)).toEqual([expect.stringMatching(/chokidar belongs to the workspace agent.*shared/)]);
    const honoInAgent = await lint('server/deploy/agent/reads.ts', "import { Hono } from 'hono';\nexport const h = Hono;\n");
    expect(layering(honoInAgent).map((p) => p.message)).toEqual([expect.stringMatching(/hono belongs to the control server/)]);
    const protobufInCli = await lint('server/cli/status.ts', "import protobuf from 'protobufjs/minimal.js';\nexport const p = protobuf;\n");
    expect(layering(protobufInCli).map((p) => p.message)).toEqual([expect.stringMatching(/protobufjs belongs to the control server/)]);
    // Where they belong, and as types only, they are fine.
    expect(layering(await lint('server/terminal/agent/pty.ts', "import { spawn } from 'node-pty';\nexport const s = spawn;\n"))).toEqual([]);
    expect(layering(await lint('server/http/x.ts', "import { Hono } from 'hono';\nexport const h = Hono;\n"))).toEqual([]);
    expect(layering(await lint('server/sync/envelope.ts', "import type { FSWatcher } from 'chokidar';\nexport type W = FSWatcher;\n"))).toEqual([]);
  });
});
