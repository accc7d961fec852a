// `npm run build`: the web UI (when web/ has a Vite config) into web/dist, then the wharf CLI
// bundle (when scripts/build-cli.mjs exists). Each part is optional so a checkout without one
// still builds the other.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

async function buildWeb() {
  const configFile = ['vite.config.ts', 'vite.config.mts', 'vite.config.js', 'vite.config.mjs']
    .map((name) => join(root, 'web', name))
    .find((path) => existsSync(path));
  if (!configFile) {
    console.log('build: no web/vite.config.*, skipping the web UI');
    return;
  }
  console.log(`build: web UI with ${configFile}`);
  const { build } = await import('vite');
  await build({ configFile });
}

function buildCli() {
  const script = join(root, 'scripts', 'build-cli.mjs');
  if (!existsSync(script)) {
    console.log('build: no scripts/build-cli.mjs, skipping the CLI bundle');
    return;
  }
  console.log('build: CLI bundle');
  const result = spawnSync(process.execPath, [script], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`scripts/build-cli.mjs failed (${result.signal ?? `exit ${result.status}`})`);
}

async function buildAll() {
  const started = performance.now();
  await buildWeb();
  buildCli();
  console.log(`build: done in ${((performance.now() - started) / 1000).toFixed(1)}s`);
}

buildAll().catch((err) => {
  console.error(`build failed: ${err.message}`);
  process.exit(1);
});
