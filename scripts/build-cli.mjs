// The `wharf` helper as one file for downloads, twice, plus the installer that fetches it:
//
//   wharf.cjs   CommonJS: GET /api/downloads/wharf.js, and the main script of the single
//               executable (scripts/build-sea.mjs: a single executable application runs CommonJS only)
//   wharf.mjs   an ES module: GET /downloads/wharf.mjs, `node wharf.mjs <command>` (Node ≥ 20)
//   install.sh  scripts/install.sh as it is; the server writes its URL into it when serving it
//
// Each bundle has package.json's version built in (`wharf --version`, and the helper's half of
// the version check against the server).
//
// Usage: node scripts/build-cli.mjs [--outdir <dir>] [--version <version>]   (default: dist/)
// --version bakes another version into the bundles: only tests use it, to make a helper that is
// older than the server it talks to.
import { chmod, copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { findForeignCode, inlineSiblingFiles, isAgentFile, root } from './bundle-lib.mjs';

const { values } = parseArgs({ options: { outdir: { type: 'string' }, version: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist'));
const version = values.version ?? JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).version;

/**
 * Optional native add-ons of the helper's packages (ssh2's sshcrypto.node and cpu-features, ws's
 * bufferutil and utf-8-validate): each is loaded inside a try/catch, with a pure-JS fallback. The
 * bundles ship none, so each is a module that throws, and the fallback is taken at once: nothing
 * is looked for on disk (a single executable application even prints a warning when its
 * require() is asked for anything but a built-in module).
 *
 * The one exception is sshcrypto.node inside the single executable: there the add-on is built for
 * exactly the `node` the executable is a copy of, so scripts/build-sea.mjs carries it as a SEA
 * asset, and the module below loads it from there (see SEA_SSH_CRYPTO). Anywhere else — the
 * bundles run by whatever Node the user has, whose add-on ABI is unknown — it throws as the
 * others do.
 */
const absentAddons = {
  name: 'absent-addons',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^(cpu-features|bufferutil|utf-8-validate)$|\.node$/ }, (args) => ({ path: args.path, namespace: 'absent-addon' }));
    pluginBuild.onLoad({ filter: /.*/, namespace: 'absent-addon' }, (args) => {
      const absent = `throw new Error(${JSON.stringify(`${args.path} is not part of the wharf helper (it uses the pure-JS fallback)`)});`;
      return { contents: /(^|\/)sshcrypto\.node$/.test(args.path) ? `${SEA_SSH_CRYPTO}\nif (!loaded) ${absent}` : absent, loader: 'js' };
    });
  },
};

/**
 * ssh2's cipher binding taken from the single executable's assets: written to a private temporary
 * folder (dlopen needs a file), loaded, and the folder removed again at once (the mapping stays),
 * so nothing is left behind and nothing another user could swap in is ever loaded. Not in a SEA,
 * without the asset, or where the file cannot be loaded (a noexec /tmp), control falls through to
 * the throw after it and ssh2 uses Node's crypto. Node's `node:sea` exists from 20.12 on; on an
 * older Node the require throws, which is the same fallback.
 */
const SEA_SSH_CRYPTO = `
let sea, loaded = false;
try { sea = require('node:sea'); } catch {}
if (sea && sea.isSea()) {
  const fs = require('node:fs'), path = require('node:path'), os = require('node:os');
  let bytes;
  try { bytes = sea.getAsset('sshcrypto.node'); } catch {}
  if (bytes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-addon-'));
    try {
      const file = path.join(dir, 'sshcrypto.node');
      fs.writeFileSync(file, new Uint8Array(bytes), { mode: 0o700 });
      process.dlopen(module, file);
      loaded = typeof module.exports.AESGCMCipher === 'function';
    } catch {} finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}`;

const common = {
  absWorkingDir: root,
  entryPoints: ['server/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'eof',
  plugins: [inlineSiblingFiles, absentAddons],
  metafile: true,
  logLevel: 'warning',
};

const FORMATS = {
  'wharf.cjs': {
    // CommonJS: a downloaded `wharf.js` runs as a script wherever it is saved, whatever its name.
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node\nconst __wharfImportMetaUrl = require("url").pathToFileURL(__filename).href;' },
    // Anything else that asks where its module lives gets the bundle's own location.
    define: { 'import.meta.url': '__wharfImportMetaUrl', __WHARF_VERSION__: JSON.stringify(version) },
  },
  'wharf.mjs': {
    format: 'esm',
    // CommonJS packages (ssh2, ws) call require() for Node's built-in modules and may read
    // __dirname: an ES module has neither, so the bundle makes them from its own location.
    banner: {
      js: [
        '#!/usr/bin/env node',
        "import { createRequire as __wharfCreateRequire } from 'node:module';",
        "import { dirname as __wharfDirname } from 'node:path';",
        "import { fileURLToPath as __wharfFileURLToPath } from 'node:url';",
        'const require = __wharfCreateRequire(import.meta.url);',
        'const __wharfBundleFile = __wharfFileURLToPath(import.meta.url);',
        'const __wharfBundleDir = __wharfDirname(__wharfBundleFile);',
      ].join('\n'),
    },
    define: { __dirname: '__wharfBundleDir', __filename: '__wharfBundleFile', __WHARF_VERSION__: JSON.stringify(version) },
  },
};

const started = performance.now();
await mkdir(outdir, { recursive: true });
// Built beside the targets and renamed, so a server handing a file out never sends half of it.
const written = [];
try {
  const ready = [];
  for (const [name, options] of Object.entries(FORMATS)) {
    const tmp = join(outdir, `${name}.${process.pid}.tmp`);
    written.push(tmp);
    const result = await build({ ...common, ...options, outfile: tmp });
    if (result.errors.length > 0) throw new Error(`esbuild reported errors for ${name}`);
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
    ready.push([tmp, join(outdir, name)]);
  }
  const installer = join(outdir, `install.sh.${process.pid}.tmp`);
  written.push(installer);
  await copyFile(join(root, 'scripts', 'install.sh'), installer);
  await chmod(installer, 0o755);
  ready.push([installer, join(outdir, 'install.sh')]);
  // wharf.cjs last: build.mjs judges the part's age by it (and the executable is made from it).
  ready.sort(([, a], [, b]) => Number(a.endsWith('wharf.cjs')) - Number(b.endsWith('wharf.cjs')));
  for (const [tmp, target] of ready) await rename(tmp, target);
} catch (err) {
  for (const tmp of written) await rm(tmp, { force: true });
  console.error(`build-cli: ${err.message}`);
  process.exit(1);
}
console.log(`build-cli: wharf ${version}: ${['wharf.cjs', 'wharf.mjs', 'install.sh'].map((name) => join(outdir, name)).join(', ')} in ${((performance.now() - started) / 1000).toFixed(1)}s`);
