import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { runProgram } from './support/wharf-cli.ts';

// The downloads serve what `npm run build` made (the integration tests' globalSetup,
// test/support/build-artifacts.ts, builds dist/ when stale); the server never builds.
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist');
const built = join(dist, 'wharf.cjs');
const version = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const PUBLIC_DOWNLOADS = ['wharf.mjs', 'wharf-linux-x64', 'install.sh', 'SHA256SUMS'];

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** The PATH of this machine without any folder that holds a `node`. */
const pathWithoutNode = async () => {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean);
  const kept: string[] = [];
  for (const dir of dirs) if (!(await readdir(dir).catch(() => [] as string[])).includes('node')) kept.push(dir);
  return kept.join(':');
};

describe('GET /api/downloads/wharf.js', () => {
  let server: TestServer;
  let artifacts: string;

  beforeAll(async () => {
    artifacts = await mkdtemp(join(tmpdir(), 'wharf-artifacts-'));
    server = await startTestServer({ argv: ['--artifacts-dir', artifacts] });
  });
  afterAll(async () => {
    await server?.dispose();
    await rm(artifacts, { recursive: true, force: true });
  });

  it('answers 503 naming "npm run build" while the helper is not built, and serves it once it is', async () => {
    const missing = await server.api('/api/downloads/wharf.js');
    expect(missing.status).toBe(503);
    const { error } = (await missing.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/npm run build/);
    expect(error.message).toContain(join(artifacts, 'wharf.cjs'));

    await copyFile(built, join(artifacts, 'wharf.cjs'));
    const res = await server.api('/api/downloads/wharf.js');
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(built))).toBe(true);
  });

  it('serves a rebuilt helper without a restart, with a new ETag', async () => {
    await copyFile(built, join(artifacts, 'wharf.cjs'));
    const first = await server.api('/api/downloads/wharf.js');
    const etag = first.headers.get('etag') as string;
    await first.arrayBuffer();
    expect((await server.api('/api/downloads/wharf.js', { headers: { 'if-none-match': etag } })).status).toBe(304);

    // As the build does it: a new file renamed over the old one.
    await writeFile(join(artifacts, 'wharf.cjs.tmp'), '#!/usr/bin/env node\n// rebuilt\n');
    await rename(join(artifacts, 'wharf.cjs.tmp'), join(artifacts, 'wharf.cjs'));
    const again = await server.api('/api/downloads/wharf.js', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(200);
    expect(again.headers.get('etag')).not.toBe(etag);
    expect(await again.text()).toBe('#!/usr/bin/env node\n// rebuilt\n');
  });

  it('stays behind credentials, and the public downloads answer 503 naming "npm run build" while they are not built', async () => {
    const anonymous = await fetch(`${server.url}/api/downloads/wharf.js`);
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    for (const name of PUBLIC_DOWNLOADS) {
      const res = await fetch(`${server.url}/downloads/${name}`);
      expect(res.status, name).toBe(503);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.message, name).toMatch(/npm run build/);
      if (name !== 'SHA256SUMS') expect(error.message).toContain(join(artifacts, name));
    }
  });
});

describe('the public downloads: /downloads/wharf.mjs, wharf-linux-x64, install.sh, SHA256SUMS', () => {
  let server: TestServer;
  let sums: Map<string, string>;

  beforeAll(async () => {
    server = await startTestServer({ argv: ['--artifacts-dir', dist] });
    const res = await fetch(`${server.url}/downloads/SHA256SUMS`);
    expect(res.status).toBe(200);
    const text = await res.text();
    // sha256sum's own format: "<64 hex>  <name>" per line.
    expect(text).toMatch(/^([0-9a-f]{64} {2}[\w.-]+\n)+$/);
    sums = new Map(text.trim().split('\n').map((line) => line.split('  ').reverse() as [string, string]));
  });
  afterAll(() => server?.dispose());

  /** A download without credentials: its bytes, checked against SHA256SUMS. */
  async function download(name: string): Promise<Buffer> {
    const res = await fetch(`${server.url}/downloads/${name}`);
    expect(res.status, name).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha256(body), `sha256 of ${name}`).toBe(sums.get(name));
    expect(res.headers.get('etag')).toBe(`"${sums.get(name)}"`);
    return body;
  }

  it('answers without credentials, each as SHA256SUMS says, and says its version', async () => {
    expect([...sums.keys()].sort()).toEqual(['install.sh', 'wharf-linux-x64', 'wharf.mjs']);
    const mjs = await download('wharf.mjs');
    expect(mjs.equals(await readFile(join(dist, 'wharf.mjs')))).toBe(true);
    const exe = await download('wharf-linux-x64');
    expect(exe.equals(await readFile(join(dist, 'wharf-linux-x64')))).toBe(true);
    const script = (await download('install.sh')).toString();
    // Filled in with where it came from.
    expect(script).toContain(`served_by='${server.url}'`);
    expect(script).not.toContain('@WHARF_SERVER_URL@');

    const head = await fetch(`${server.url}/downloads/wharf-linux-x64`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(exe.length));
    expect(head.headers.get('x-wharf-version')).toBe(version);
    // Every answer names the server's version, refusals included.
    const refused = await fetch(`${server.url}/api/workspaces`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-wharf-version')).toBe(version);
    // A path beside them is not public.
    expect((await fetch(`${server.url}/downloads/wharf.cjs`)).status).toBe(401);
  });

  it('serves a wharf.mjs that runs with `node wharf.mjs` anywhere', async () => {
    const dir = await server.tempDir('wharf-mjs-');
    await writeFile(join(dir, 'wharf.mjs'), await download('wharf.mjs'));
    const env = { PATH: process.env.PATH ?? '', HOME: dir };
    expect(await runProgram(process.execPath, [join(dir, 'wharf.mjs'), '--version'], { cwd: dir, env })).toEqual({ code: 0, stdout: `wharf ${version}\n`, stderr: '' });
    const help = await runProgram(process.execPath, [join(dir, 'wharf.mjs'), '--help'], { cwd: dir, env });
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: wharf <command>/);
    // Run by whatever node the user has, it cannot know that node's add-on ABI: Node's crypto.
    const verbose = await runProgram(process.execPath, [join(dir, 'wharf.mjs'), '--version', '--verbose'], { cwd: dir, env });
    expect(verbose).toEqual({ code: 0, stdout: `wharf ${version}\nnode ${process.version} (${process.execPath})\nssh ciphers: Node's crypto (ssh2 without its native add-on)\n`, stderr: '' });
  });

  it('serves an executable that runs --version and --help with no node on PATH', async () => {
    const dir = await server.tempDir('wharf-exe-');
    const exe = join(dir, 'wharf');
    await writeFile(exe, await download('wharf-linux-x64'));
    await chmod(exe, 0o755);
    for (const PATH of ['/nonexistent', await pathWithoutNode()]) {
      const env = { PATH, HOME: dir };
      expect(await runProgram(exe, ['--version'], { cwd: dir, env })).toEqual({ code: 0, stdout: `wharf ${version}\n`, stderr: '' });
      const help = await runProgram(exe, ['--help'], { cwd: dir, env });
      expect(help).toMatchObject({ code: 0, stderr: '' });
      expect(help.stdout).toMatch(/^Usage: wharf <command>[\s\S]*\n {2}login /);
    }
    // It carries ssh2's native cipher binding (built for the very node it is a copy of) and
    // loads it from a private temporary folder that it removes again at once.
    const tmp = await server.tempDir('wharf-exe-tmp-');
    const verbose = await runProgram(exe, ['--version', '--verbose'], { cwd: dir, env: { PATH: '/nonexistent', HOME: dir, TMPDIR: tmp } });
    expect(verbose).toEqual({ code: 0, stdout: `wharf ${version}\nnode ${process.version} (built into this single executable)\nssh ciphers: native (ssh2's sshcrypto.node)\n`, stderr: '' });
    expect(await readdir(tmp)).toEqual([]);
    // And it is a real helper: it reads the environment's server and fails as the bundle does.
    const offline = await runProgram(exe, ['workspaces'], { cwd: dir, env: { PATH: '/nonexistent', HOME: dir, WHARF_URL: server.url, WHARF_TOKEN: 'wrong' } });
    expect(offline).toMatchObject({ code: 1, stdout: '' });
    expect(offline.stderr).toMatch(/^wharf: the server at http:\/\/127\.0\.0\.1:\d+ refused the token \(401 Unauthorized\)/);
  });

  it('installs with `sh install.sh <dir>`: the executable on Linux x64, checked, and it runs', async () => {
    const home = await server.tempDir('wharf-install-home-');
    const script = join(home, 'install.sh');
    await writeFile(script, await download('install.sh'));
    const target = join(home, 'tools', 'bin');
    const run = await runProgram('sh', [script, target], { cwd: home, env: { PATH: process.env.PATH ?? '', HOME: home } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`wharf: downloading ${server.url}/downloads/wharf-linux-x64\n`);
    expect(run.stdout).toContain(`wharf: sha256 of wharf-linux-x64 checked: ${sums.get('wharf-linux-x64')}\n`);
    expect(run.stdout).toContain(`wharf: installed ${target}/wharf (wharf-linux-x64)\n`);
    expect(run.stdout).toContain(`wharf: wharf ${version}\n`);
    expect(run.stdout).toContain(`wharf: ${target} is not on your PATH`);
    expect(await readdir(target)).toEqual(['wharf']);
    expect(sha256(await readFile(join(target, 'wharf')))).toBe(sums.get('wharf-linux-x64'));
    expect(await runProgram(join(target, 'wharf'), ['--version'], { cwd: home, env: { PATH: '/nonexistent', HOME: home } })).toEqual({ code: 0, stdout: `wharf ${version}\n`, stderr: '' });
  });

  it('installs through `curl … | sh` into ~/.local/bin by default, and wharf.mjs with a runner script when asked', async () => {
    const home = await server.tempDir('wharf-install-pipe-');
    const env = { PATH: `${join(home, '.local', 'bin')}:${process.env.PATH ?? ''}`, HOME: home };
    const piped = await promisify(execFile)('sh', ['-c', `curl -fsSL ${server.url}/downloads/install.sh | sh`], { cwd: home, env });
    expect(piped.stdout).toContain(`wharf: installed ${home}/.local/bin/wharf (wharf-linux-x64)\n`);
    expect(piped.stdout).not.toContain('is not on your PATH');

    // As on a machine with no executable for it: the ES module, run by node through a script named wharf.
    const mjs = await runProgram('sh', ['-c', `curl -fsSL ${server.url}/downloads/install.sh | WHARF_INSTALL_FILE=wharf.mjs sh -s -- "$HOME/js bin"`], { cwd: home, env });
    expect(mjs.stderr).toBe('');
    expect(mjs.code).toBe(0);
    const target = join(home, 'js bin');
    expect(mjs.stdout).toContain(`wharf: sha256 of wharf.mjs checked: ${sums.get('wharf.mjs')}\n`);
    expect(mjs.stdout).toContain(`wharf: installed ${target}/wharf (runs ${target}/wharf.mjs with node ${process.versions.node})\n`);
    expect((await readdir(target)).sort()).toEqual(['wharf', 'wharf.mjs']);
    expect(await runProgram(join(target, 'wharf'), ['--version'], { cwd: home, env })).toEqual({ code: 0, stdout: `wharf ${version}\n`, stderr: '' });
  });

  it('picks wharf.mjs on a machine with no executable for it, and says what to install without Node 20', async () => {
    const home = await server.tempDir('wharf-install-mac-');
    const script = join(home, 'install.sh');
    await writeFile(script, await download('install.sh'));
    // A macOS on arm64, as far as the script can tell: `uname` is the only thing it asks.
    const fake = join(home, 'fake-bin');
    await mkdir(fake);
    await writeFile(join(fake, 'uname'), '#!/bin/sh\ncase "$1" in -s) echo Darwin ;; -m) echo arm64 ;; esac\n', { mode: 0o755 });

    const withNode = await runProgram('sh', [script, join(home, 'bin')], { cwd: home, env: { PATH: `${fake}:${process.env.PATH ?? ''}`, HOME: home } });
    expect(withNode).toMatchObject({ code: 0, stderr: '' });
    expect(withNode.stdout).toContain(`wharf: downloading ${server.url}/downloads/wharf.mjs\n`);
    expect(withNode.stdout).toContain(`wharf: wharf ${version}\n`);

    // The same machine without node: only the tools the script uses, each linked into one folder.
    const tools = join(home, 'tools');
    await mkdir(tools);
    for (const tool of ['curl', 'sha256sum', 'awk', 'cut', 'mktemp', 'rm', 'mkdir', 'cp', 'chmod', 'mv', 'sed']) {
      const found = (await promisify(execFile)('sh', ['-c', `command -v ${tool}`])).stdout.trim();
      await symlink(found, join(tools, tool));
    }
    const noNode = await runProgram('/bin/sh', [script, join(home, 'other')], { cwd: home, env: { PATH: `${fake}:${tools}`, HOME: home } });
    expect(noNode).toEqual({
      code: 1,
      stdout: '',
      stderr: 'wharf: there is no wharf executable for Darwin arm64, and the portable helper needs Node.js 20 or later (no node on PATH): install Node.js 20+ and run this again\n',
    });
    // And with a node that is too old.
    await writeFile(join(fake, 'node'), '#!/bin/sh\n[ "$1" = --version ] && echo v18.20.4\nexit 1\n', { mode: 0o755 });
    const oldNode = await runProgram('/bin/sh', [script, join(home, 'other')], { cwd: home, env: { PATH: `${fake}:${tools}`, HOME: home } });
    expect(oldNode).toMatchObject({ code: 1, stdout: '' });
    expect(oldNode.stderr).toContain('needs Node.js 20 or later (found node v18.20.4)');
    expect(await readdir(join(home, 'other')).catch(() => 'absent')).toBe('absent');
  });

  it('refuses a download that does not match SHA256SUMS, and installs nothing', async () => {
    // Between the user and the server: a proxy that changes one byte of the file it relays.
    const upstream = server.url;
    const tamper = new Set(['/downloads/wharf-linux-x64', '/downloads/wharf.mjs']);
    const proxy: Server = createServer((req, res) => {
      void (async () => {
        const answer = await fetch(`${upstream}${req.url}`);
        const body = Buffer.from(await answer.arrayBuffer());
        if (tamper.has(req.url ?? '') && body.length > 1000) body[1000] ^= 0x01;
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' });
        res.end(body);
      })().catch((err: Error) => res.destroy(err));
    });
    await new Promise<void>((listening) => proxy.listen(0, '127.0.0.1', listening));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const home = await server.tempDir('wharf-install-tampered-');
      const script = join(home, 'install.sh');
      await writeFile(script, await download('install.sh'));
      for (const file of ['wharf-linux-x64', 'wharf.mjs']) {
        const target = join(home, `bin-${file}`);
        const run = await runProgram('sh', [script, target], { cwd: home, env: { PATH: process.env.PATH ?? '', HOME: home, WHARF_DOWNLOAD_URL: proxyUrl, WHARF_INSTALL_FILE: file } });
        expect(run.code, file).toBe(1);
        expect(run.stderr).toMatch(
          new RegExp(`^wharf: the downloaded ${file.replace('.', '\\.')} does not match its sha256 in ${proxyUrl}/downloads/SHA256SUMS \\(expected ${sums.get(file)}, got [0-9a-f]{64}\\): it was altered or cut short on the way; nothing was installed\n$`),
        );
        expect(await readdir(target).catch(() => 'absent')).toBe('absent');
      }
      expect(await readdir(home)).toEqual(['install.sh']);
    } finally {
      await new Promise((closed) => proxy.close(closed));
    }
  });
});

describe('a helper older than the server', () => {
  let server: TestServer;
  let older: string;

  beforeAll(async () => {
    server = await startTestServer({ workspaces: ['ws1'] });
    // The real bundle, built with an older version baked in: the build's test-only --version.
    older = await server.tempDir('wharf-older-helper-');
    await promisify(execFile)(process.execPath, [join(root, 'scripts', 'build-cli.mjs'), '--outdir', older, '--version', '0.0.1'], { cwd: root });
  });
  afterAll(() => server?.dispose());

  it('is told once per command to update, on stderr, and the command still works', async () => {
    const home = await server.tempDir('wharf-older-home-');
    const env = { PATH: process.env.PATH ?? '', HOME: home, WHARF_URL: server.url, WHARF_TOKEN: server.token };
    const notice = `wharf: this helper is 0.0.1, the server is ${version}: update with curl -fsSL ${server.url}/downloads/install.sh | sh\n`;
    const helper = join(older, 'wharf.mjs');
    expect(await runProgram(process.execPath, [helper, '--version'], { cwd: home, env })).toEqual({ code: 0, stdout: 'wharf 0.0.1\n', stderr: '' });

    const listed = await runProgram(process.execPath, [helper, 'workspaces'], { cwd: home, env });
    expect(listed).toMatchObject({ code: 0, stderr: notice });
    expect(listed.stdout).toMatch(/\bws1\b/);
    // Many requests and a websocket tunnel: still one line.
    expect(await runProgram(process.execPath, [helper, 'ssh', 'ws1', '--', 'echo', 'still works; exit 3'], { cwd: home, env })).toEqual({ code: 3, stdout: 'still works\n', stderr: notice });
    // A failed command is told too, with its own error after.
    const failed = await runProgram(process.execPath, [helper, 'ssh', 'ws9', '--', 'true'], { cwd: home, env });
    expect(failed.code).toBe(1);
    expect(failed.stderr.startsWith(notice)).toBe(true);
    expect(failed.stderr.slice(notice.length)).toMatch(/^wharf: no workspace "ws9"/);

    // The helper of this very build is not told anything.
    const current = await runProgram(process.execPath, [join(dist, 'wharf.mjs'), 'workspaces'], { cwd: home, env });
    expect(current).toMatchObject({ code: 0, stderr: '' });
  });
});
