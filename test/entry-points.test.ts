import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Each of wharf's programs loads only its own half of every feature (DESIGN.md, "Layout and
// layering"): the control server no ptys, headless terminals or file watchers; the agent no
// HTTP framework, protobuf or BuildKit decoder; the helper neither. The lint checks the folders;
// this checks what really gets loaded, by importing each entry point in a fresh Node with hooks
// that write down every module it resolves.
const root = dirname(dirname(fileURLToPath(import.meta.url)));

const ENTRIES = {
  server: 'server/main.ts',
  agent: 'server/agent-main.ts',
  helper: 'server/cli/main.ts',
};

let scratch: string;

/** Packages (and files of ours) that importing `entry` loads, by resolving its static imports. */
async function loadsOf(entry: string): Promise<{ packages: Set<string>; files: string[] }> {
  const out = join(scratch, `${entry.replace(/\W/g, '_')}.txt`);
  const program = `await import(${JSON.stringify(pathToFileURL(join(root, entry)).href)}).catch(() => {}); process.exit(0);`;
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', pathToFileURL(join(root, 'test/support/record-loads.mjs')).href, '--import', 'tsx', '--input-type=module', '-e', program],
      // The agent's and helper's main() run on import: no arguments make them stop at once.
      { cwd: root, env: { PATH: process.env.PATH ?? '', HOME: scratch, WHARF_RECORD_LOADS: out }, timeout: 120_000 },
      (err) => (err && (err as { killed?: boolean }).killed ? reject(err) : resolve()),
    );
  });
  const urls = (await readFile(out, 'utf8')).split('\n').filter(Boolean);
  const paths = urls.map((url) => fileURLToPath(url));
  const packages = new Set<string>();
  for (const path of paths) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
    if (match) packages.add(match[1]);
  }
  return { packages, files: paths.filter((p) => p.startsWith(`${root}/server/`)).map((p) => p.slice(root.length + 1)) };
}

describe('entry points load only their own process half', () => {
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'wharf-entry-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('the control server loads no pty, headless terminal or file watcher', async () => {
    const { packages, files } = await loadsOf(ENTRIES.server);
    expect(packages.has('hono'), 'the check must see what the server loads').toBe(true);
    for (const name of ['node-pty', '@xterm/headless', '@xterm/addon-serialize', 'chokidar']) expect(packages, name).not.toContain(name);
    expect(files.filter((f) => /\/agent\//.test(f) && !f.endsWith('index.ts'))).toEqual([]);
  });

  it('the workspace agent loads no HTTP framework, protobuf or BuildKit decoder', async () => {
    const { packages, files } = await loadsOf(ENTRIES.agent);
    expect(packages.has('ssh2'), 'the check must see what the agent loads').toBe(true);
    for (const name of ['hono', '@hono/node-server', 'protobufjs', 'pino', 'prom-client']) expect(packages, name).not.toContain(name);
    expect(files.filter((f) => /buildkit|builder/.test(f))).toEqual([]);
    expect(files.filter((f) => /^server\/(http|workspace)\//.test(f) || /\/server\//.test(f.slice('server/'.length)))).toEqual([]);
  });

  it('the helper loads neither the agent nor the server', async () => {
    const { packages, files } = await loadsOf(ENTRIES.helper);
    expect(packages.has('ssh2'), 'the check must see what the helper loads').toBe(true);
    for (const name of ['node-pty', '@xterm/headless', 'chokidar', 'hono', '@hono/node-server', 'protobufjs']) expect(packages, name).not.toContain(name);
    expect(files.filter((f) => f.startsWith('server/agent/') || f.startsWith('server/deploy/') || f.startsWith('server/http/'))).toEqual([]);
  });
});
