// `npm run build`: the artifacts wharf ships, each under dist/ (or web/dist):
//
//   agent       dist/agent/             the workspace agent: agent.cjs, its bundle and code cache, its native add-ons (scripts/build-agent.mjs)
//   helper      dist/wharf.cjs,         the `wharf` helper as one file: CommonJS (GET /api/downloads/wharf.js) and an
//               dist/wharf.mjs,         ES module (GET /downloads/wharf.mjs), and the installer that fetches the
//               dist/install.sh         helper (GET /downloads/install.sh) (scripts/build-cli.mjs)
//   executable  dist/wharf-linux-x64    the helper as a Node single executable application, made from wharf.cjs
//                                       (GET /downloads/wharf-linux-x64; Linux x64 only) (scripts/build-sea.mjs)
//   web         web/dist/               the web UI (Vite), when web/ has a Vite config
//
// Usage: node scripts/build.mjs [--if-stale] [agent] [helper] [executable] [web]   (no names: all four)
// --if-stale skips a part whose output is newer than every file it is made from (server/,
// package-lock.json, package.json and its build script; the helper bundle and this node for the
// executable; web/ and server/common for the UI), so `npm start` and the tests can call it every
// time. Every part is tried; the exit status is 1 if one failed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUNDLE_SOURCES, mtimeOf, newestMtime, root } from './bundle-lib.mjs';

const { values, positionals } = parseArgs({ options: { 'if-stale': { type: 'boolean' } }, allowPositionals: true });

function runScript(name, args = []) {
  const result = spawnSync(process.execPath, [join(root, 'scripts', name), ...args], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`scripts/${name} failed (${result.signal ?? `exit ${result.status}`})`);
}

const viteConfig = () =>
  ['vite.config.ts', 'vite.config.mts', 'vite.config.js', 'vite.config.mjs'].map((name) => join(root, 'web', name)).find((path) => existsSync(path));

/** Each part: what it writes (the file whose age is compared), what it is made from, how to build it. */
const PARTS = {
  agent: {
    output: join(root, 'dist', 'agent', 'agent.mjs'),
    // agent.mjs is renamed into place after its add-ons, so with it present they are too — unless removed by hand.
    complete: () => ['pty.node', 'bridge.mjs', 'agent.cjs'].every((name) => existsSync(join(root, 'dist', 'agent', name))),
    sources: () => [...BUNDLE_SOURCES, join(root, 'scripts', 'build-agent.mjs')],
    build: () => runScript('build-agent.mjs'),
  },
  helper: {
    // wharf.cjs is renamed into place last.
    output: join(root, 'dist', 'wharf.cjs'),
    complete: () => ['wharf.mjs', 'install.sh'].every((name) => existsSync(join(root, 'dist', name))),
    // package.json: its version is built into the bundles.
    sources: () => [...BUNDLE_SOURCES, join(root, 'package.json'), join(root, 'scripts', 'build-cli.mjs'), join(root, 'scripts', 'install.sh')],
    build: () => runScript('build-cli.mjs'),
  },
  executable: {
    output: join(root, 'dist', 'wharf-linux-x64'),
    // Made on Linux x64 only: elsewhere build-sea.mjs says so and makes nothing.
    complete: () => true,
    // The node running the build is the one copied into the executable, with ssh2's cipher add-on (when npm built it).
    sources: () => [
      join(root, 'dist', 'wharf.cjs'),
      join(root, 'scripts', 'build-sea.mjs'),
      join(root, 'node_modules', 'postject', 'package.json'),
      process.execPath,
      ...[join(root, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node')].filter((file) => existsSync(file)),
    ],
    build: () => runScript('build-sea.mjs'),
  },
  web: {
    output: join(root, 'web', 'dist', 'index.html'),
    complete: () => true,
    sources: () => [join(root, 'web'), join(root, 'server', 'common'), join(root, 'package-lock.json')],
    skip: (path) => path.startsWith(join(root, 'web', 'dist') + '/') || path.endsWith('.test.ts'),
    async build() {
      const configFile = viteConfig();
      if (!configFile) {
        console.log('build: no web/vite.config.*, skipping the web UI');
        return;
      }
      const { build } = await import('vite');
      await build({ configFile });
    },
  },
};

const names = positionals.length > 0 ? positionals : Object.keys(PARTS);
for (const name of names) if (!(name in PARTS)) throw new Error(`build: unknown part "${name}" (one of ${Object.keys(PARTS).join(', ')})`);

const started = performance.now();
const failed = [];
for (const name of names) {
  const part = PARTS[name];
  if (values['if-stale']) {
    const built = mtimeOf(part.output);
    if (built > 0 && part.complete() && built >= newestMtime(part.sources(), part.skip)) {
      console.log(`build: ${name} is up to date`);
      continue;
    }
  }
  console.log(`build: ${name}`);
  try {
    await part.build();
  } catch (err) {
    console.error(`build: ${name} failed: ${err.message}`);
    failed.push(name);
  }
}
console.log(`build: ${failed.length ? `failed (${failed.join(', ')})` : 'done'} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
process.exit(failed.length ? 1 : 0);
