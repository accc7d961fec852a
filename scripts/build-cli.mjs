// The `wharf` helper as one file for downloads: `node wharf.cjs <command>` needs only Node 20.
// Usage: node scripts/build-cli.mjs [--outfile <path>]   (default: dist/wharf.cjs)
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { findForeignCode, inlineSiblingFiles, isAgentFile, root } from './bundle-lib.mjs';

const { values } = parseArgs({ options: { outfile: { type: 'string' } } });
const outfile = resolve(values.outfile ?? join(root, 'dist', 'wharf.cjs'));
// Built beside the target and renamed, so a server handing the file out never sends half of it.
const tmp = `${outfile}.${process.pid}.tmp`;

const started = performance.now();
await mkdir(dirname(outfile), { recursive: true });
try {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['server/cli/main.ts'],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    // CommonJS: a downloaded `wharf.js` runs as a script wherever it is saved.
    format: 'cjs',
    minify: true,
    legalComments: 'eof',
    banner: { js: '#!/usr/bin/env node\nconst __wharfImportMetaUrl = require("url").pathToFileURL(__filename).href;' },
    // Anything else that asks where its module lives gets the bundle's own location.
    define: { 'import.meta.url': '__wharfImportMetaUrl' },
    plugins: [inlineSiblingFiles],
    // Native add-ons stay out: ssh2 falls back to pure JS without its optional ones.
    external: ['cpu-features', '*.node'],
    metafile: true,
    logLevel: 'warning',
  });
  if (result.errors.length > 0) throw new Error('esbuild reported errors');
  // The helper runs on laptops: nothing of the workspace agent may reach it (`wharf agent
  // bridge` is server/common/bridge.ts, which needs only node:net).
  const foreign = findForeignCode(result.metafile, {
    bundle: 'the wharf helper bundle',
    packages: ['node-pty', '@xterm/headless', '@xterm/addon-serialize', 'chokidar'],
    isForbiddenFile: isAgentFile,
    why: 'code of the workspace agent (DESIGN.md, "Layout and layering")',
  });
  if (foreign) throw new Error(foreign);
  await chmod(tmp, 0o755);
  await rename(tmp, outfile);
} catch (err) {
  await rm(tmp, { force: true });
  console.error(`build-cli: ${err.message}`);
  process.exit(1);
}
console.log(`build-cli: ${outfile} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
