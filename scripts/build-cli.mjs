// The `wharf` helper as one file for downloads: `node wharf.cjs <command>` needs only Node 20.
// Usage: node scripts/build-cli.mjs [--outfile <path>]   (default: dist/wharf.cjs)
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { values } = parseArgs({ options: { outfile: { type: 'string' } } });
const outfile = resolve(values.outfile ?? join(root, 'dist', 'wharf.cjs'));
// Built beside the target and renamed, so a server handing the file out never sends half of it.
const tmp = `${outfile}.${process.pid}.tmp`;

/**
 * Files that modules read beside themselves at load time (`readFileSync(new URL('./x',
 * import.meta.url), 'utf8')`) are inlined: a single-file download has nothing beside it.
 */
const inlineSiblingFiles = {
  name: 'inline-sibling-files',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /\.ts$/ }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const pattern = /readFileSync\(\s*new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)\s*,\s*(['"])utf-?8\3\s*\)/g;
      const inlined = [];
      for (const match of source.matchAll(pattern)) {
        inlined.push([match[0], JSON.stringify(await readFile(resolve(dirname(args.path), match[2]), 'utf8'))]);
      }
      for (const [call, text] of inlined) source = source.replace(call, text);
      return { contents: source, loader: 'ts' };
    });
  },
};

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
    // Native add-ons stay out: ssh2 falls back to pure JS without its optional ones, and
    // node-pty is only reached by `wharf agent bridge`, inside a workspace that has it.
    external: ['node-pty', 'cpu-features', '*.node'],
    logLevel: 'warning',
  });
  if (result.errors.length > 0) throw new Error('esbuild reported errors');
  await chmod(tmp, 0o755);
  await rename(tmp, outfile);
} catch (err) {
  await rm(tmp, { force: true });
  console.error(`build-cli: ${err.message}`);
  process.exit(1);
}
console.log(`build-cli: ${outfile} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
