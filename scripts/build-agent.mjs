// The workspace agent as a bundle that plain `node` runs (no tsx, no node_modules): one ES module
// built from server/agent-main.ts, and beside it the native add-ons it loads.
// Usage: node scripts/build-agent.mjs [--outdir <dir>]   (default: dist/agent)
//
//   <outdir>/agent.mjs          the agent (`node agent.mjs --socket … --root …`, or `bridge --socket …`)
//   <outdir>/bridge.mjs         the bridge alone (`node bridge.mjs --socket … [--wait-ms …]`): what
//                               container drivers exec; it starts in about half the agent's time
//   <outdir>/pty.node           node-pty's add-on (required)
//   <outdir>/sshcrypto.node     ssh2's optional ciphers, and cpu-features' cpufeatures.node, when built
//
// Every file is written beside its target and renamed over it, agent.mjs last: a running agent
// keeps the add-on it mapped (a file overwritten in place under it would crash it), and a driver
// starting an agent meanwhile sees either the old bundle or the whole new one.
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { findForeignCode, inlineSiblingFiles, isServerFile, root } from './bundle-lib.mjs';

const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist', 'agent'));
const outfile = join(outdir, 'agent.mjs');
/** Add-ons the agent cannot run without; the others are optional (their packages fall back to JS). */
const REQUIRED_NATIVES = ['pty.node'];

/**
 * Native add-ons stay files: every `require('…/x.node')` becomes `require('./x.node')`, which the
 * bundle's own `require` (made from its import.meta.url, see the banner) resolves beside it.
 * The real files are collected here and copied next to agent.mjs.
 */
const natives = new Map();
const nativesBeside = {
  name: 'natives-beside-the-bundle',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /\.node$/ }, (args) => {
      const source = resolve(args.resolveDir, args.path);
      natives.set(basename(source), source);
      return { path: `./${basename(source)}`, external: true };
    });
  },
};

/**
 * node-pty looks for pty.node itself (lib/utils.js, loadNativeModule): it tries `require()` of
 * `../build/Release/`, `./build/Release/` and the prebuilds folders relative to its lib/ folder
 * — a computed path that a bundler can neither follow nor rewrite. Its loader is replaced by one
 * static require, which nativesBeside turns into `./pty.node` beside the bundle. `dir` is where
 * node-pty then looks for its spawn-helper (used on macOS only): the bundle's folder too.
 */
const nodePtyLoader = {
  name: 'node-pty-loader',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]node_modules[\\/]node-pty[\\/]lib[\\/]utils\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('exports.loadNativeModule = loadNativeModule')) {
        throw new Error(`node-pty's ${args.path} no longer defines loadNativeModule as build-agent.mjs expects; check how it finds pty.node`);
      }
      const loader = `
exports.loadNativeModule = function loadNativeModule(name) {
  if (name !== 'pty') throw new Error('wharf agent bundle: only pty.node is shipped, not ' + name + '.node');
  return { dir: __dirname, module: require('../build/Release/pty.node') };
};`;
      return { contents: `${source}\n${loader}\n`, loader: 'js' };
    });
  },
};

/**
 * ssh2 instantiates its poly1305 WebAssembly module (an Emscripten build with 16 MiB of memory)
 * at load, whether or not it will be used. It is only the pure-JS chacha20-poly1305 fallback's;
 * with the native binding loaded (sshcrypto.node ships beside the bundle) nothing calls it, and
 * it was 13 of the agent's 58 MiB idle RSS, for every workspace. Here it is set up only when the
 * binding did not load. The check below fails the build if ssh2 changes shape, rather than
 * silently keep or break it.
 */
const SSH2_POLY1305_INIT = "init: (() => {\n    // eslint-disable-next-line no-async-promise-executor\n    return new Promise(async (resolve, reject) => {";
const ssh2LazyPoly1305 = {
  name: 'ssh2-lazy-poly1305',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]node_modules[\\/]ssh2[\\/]lib[\\/]protocol[\\/]crypto\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(SSH2_POLY1305_INIT) || !source.includes('bindingAvailable: !!binding')) {
        throw new Error(`ssh2's ${args.path} no longer sets up poly1305 as build-agent.mjs expects; check its init`);
      }
      const contents = source.replace(SSH2_POLY1305_INIT, "init: (() => {\n    if (binding) return Promise.resolve();\n    return new Promise(async (resolve, reject) => {");
      return { contents, loader: 'js' };
    });
  },
};

/**
 * ssh2's HTTP(S)-over-SSH agents are client helpers the agent never uses, and loading them loads
 * node's http, https and tls: a few milliseconds of every agent's start and about 2 MB of its
 * memory. Their module is replaced by one whose classes say so if anything ever constructs them.
 */
const ssh2NoHttpAgents = {
  name: 'ssh2-no-http-agents',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]node_modules[\\/]ssh2[\\/]lib[\\/]http-agents\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!/SSHTTPAgent/.test(source) || !/SSHTTPSAgent/.test(source)) {
        throw new Error(`ssh2's ${args.path} no longer exports SSHTTPAgent and SSHTTPSAgent as build-agent.mjs expects`);
      }
      const contents = [
        'class LeftOut { constructor() { throw new Error("ssh2\'s HTTP agents are left out of the wharf agent bundle (scripts/build-agent.mjs)"); } }',
        'module.exports = { SSHTTPAgent: LeftOut, SSHTTPSAgent: LeftOut };',
      ].join('\n');
      return { contents, loader: 'js' };
    });
  },
};

const started = performance.now();
await mkdir(outdir, { recursive: true });
const written = [];
try {
  const tmp = `${outfile}.${process.pid}.tmp`;
  written.push(tmp);
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['server/agent-main.ts'],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Whitespace and syntax only: names stay, so a stack trace in an agent log still reads.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'eof',
    // CommonJS packages (ssh2, node-pty, @xterm/headless) call require() and read __dirname:
    // an ES module has neither, so the bundle makes them from its own location. `require` is
    // what esbuild's __require helper calls for add-ons and Node's built-in modules.
    banner: {
      js: [
        "import { createRequire as __wharfCreateRequire } from 'node:module';",
        "import { dirname as __wharfDirname } from 'node:path';",
        "import { fileURLToPath as __wharfFileURLToPath } from 'node:url';",
        'const require = __wharfCreateRequire(import.meta.url);',
        'const __wharfBundleFile = __wharfFileURLToPath(import.meta.url);',
        'const __wharfBundleDir = __wharfDirname(__wharfBundleFile);',
      ].join('\n'),
    },
    define: { __dirname: '__wharfBundleDir', __filename: '__wharfBundleFile' },
    plugins: [inlineSiblingFiles, nodePtyLoader, ssh2LazyPoly1305, ssh2NoHttpAgents, nativesBeside],
    metafile: true,
    logLevel: 'warning',
  });
  if (result.errors.length > 0) throw new Error('esbuild reported errors');
  // The agent loads only its own half of every feature: a server package or file that reaches
  // the bundle is an import that crossed the line, and fails the build with its import chain.
  const foreign = findForeignCode(result.metafile, {
    bundle: 'the agent bundle',
    packages: ['hono', '@hono/node-server', 'protobufjs', 'pino', 'prom-client'],
    isForbiddenFile: isServerFile,
    why: 'control-server code (DESIGN.md, "Layout and layering")',
  });
  if (foreign) throw new Error(foreign);
  // The bridge: node:net only (server/agent-bridge-main.ts), written before agent.mjs is renamed
  // into place, so a bundle with agent.mjs has it too.
  const bridgeTmp = `${join(outdir, 'bridge.mjs')}.${process.pid}.tmp`;
  written.push(bridgeTmp);
  const bridge = await build({
    absWorkingDir: root,
    entryPoints: ['server/agent-bridge-main.ts'],
    outfile: bridgeTmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minifyWhitespace: true,
    minifySyntax: true,
    metafile: true,
    logLevel: 'warning',
  });
  if (bridge.errors.length > 0) throw new Error('esbuild reported errors for bridge.mjs');
  const bridgeInputs = Object.keys(bridge.metafile.inputs).filter((input) => !['server/agent-bridge-main.ts', 'server/config/bridge-config.ts', 'server/common/bridge.ts', 'server/common/pipe-duplex.ts'].includes(input));
  if (bridgeInputs.length) throw new Error(`bridge.mjs must load node:net alone: it pulled in ${bridgeInputs.join(', ')}`);
  await rename(bridgeTmp, join(outdir, 'bridge.mjs'));
  for (const name of REQUIRED_NATIVES) {
    if (!existsSync(natives.get(name) ?? '')) throw new Error(`${name} is not built (looked for ${natives.get(name) ?? 'a require of it'}); run npm ci (or npm rebuild node-pty)`);
  }
  const copied = [];
  for (const [name, source] of natives) {
    if (!existsSync(source)) continue;
    const target = join(outdir, name);
    written.push(`${target}.${process.pid}.tmp`);
    await copyFile(source, `${target}.${process.pid}.tmp`);
    await rename(`${target}.${process.pid}.tmp`, target);
    copied.push(name);
  }
  await rename(tmp, outfile);
  console.log(`build-agent: ${outfile} (+ ${copied.join(', ')}) in ${((performance.now() - started) / 1000).toFixed(1)}s`);
} catch (err) {
  for (const file of written) await rm(file, { force: true });
  console.error(`build-agent: ${err.message}`);
  process.exit(1);
}
