// The `wharf` helper as one executable that needs no Node installed: a Node single executable
// application (SEA, https://nodejs.org/api/single-executable-applications.html) made from the
// helper's CommonJS bundle (dist/wharf.cjs, scripts/build-cli.mjs) and the `node` running this
// script:
//
//   1. `node --experimental-sea-config` turns wharf.cjs into a preparation blob;
//   2. that `node` binary is copied and stripped of its symbols (`strip`, when installed: about
//      13 MB less, and a SEA needs none of them);
//   3. postject (a devDependency) adds the blob to the copy as the ELF note NODE_SEA_BLOB and
//      flips the binary's SEA fuse, so it runs the blob instead of reading a command line;
//   4. the result must answer `--version` with the version built into the bundle, with no
//      `node` on PATH, and (when ssh2's sshcrypto.node is built) say that it uses that native
//      binding, which it carries as a SEA asset, before it is renamed into place.
//
// Only on Linux x64: the executable is a copy of this machine's node, so it runs where this
// node runs (glibc Linux x64). Elsewhere the part is skipped, and the download route answers
// 503 for it (install.sh then uses wharf.mjs).
//
// Usage: node scripts/build-sea.mjs [--outdir <dir>]   (default: dist/; reads <dir>/wharf.cjs)
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './bundle-lib.mjs';

const EXECUTABLE = 'wharf-linux-x64';
/** The fuse that Node's SEA support looks for: `…:0` in a plain node, `…:1` once a blob is in. */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** ssh2's optional native cipher binding, as npm built it for the node running this script. */
const SSH_CRYPTO = join(root, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node');

const { values } = parseArgs({ options: { outdir: { type: 'string' } } });
const outdir = resolve(values.outdir ?? join(root, 'dist'));
const main = join(outdir, 'wharf.cjs');
const outfile = join(outdir, EXECUTABLE);

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`build-sea: skipped: the ${EXECUTABLE} executable is made from a Linux x64 node, and this is ${process.platform} ${process.arch}`);
  process.exit(0);
}

const started = performance.now();
const work = await mkdtemp(join(tmpdir(), 'wharf-sea-'));
const tmp = `${outfile}.${process.pid}.tmp`;
try {
  // What the bundle says it is, run by this node: the executable must say the same.
  const asScript = spawnSync(process.execPath, [main, '--version'], { encoding: 'utf8', cwd: work, env: { PATH: process.env.PATH, HOME: work } });
  if (asScript.error || asScript.status !== 0) throw new Error(`${main} is missing or does not run (build the helper first: node scripts/build.mjs helper): ${asScript.stderr || asScript.error?.message}`);
  const version = asScript.stdout.trim();

  // 1. The preparation blob. The experimental warning is turned off: the helper's stderr is the user's.
  // ssh2's cipher binding goes in as an asset (the bundle loads it from there, see
  // scripts/build-cli.mjs): built by npm for this node, it fits the executable exactly, and it
  // takes a third to a half of the helper's CPU per byte off (docs/benchmarks.md, Tunnels).
  const blob = join(work, 'sea-prep.blob');
  const addon = await stat(SSH_CRYPTO).then(() => true, () => false);
  if (!addon) console.log(`build-sea: ${SSH_CRYPTO} is not built (npm could not compile it): the executable uses Node's crypto for SSH`);
  const assets = addon ? { 'sshcrypto.node': SSH_CRYPTO } : {};
  await writeFile(join(work, 'sea-config.json'), JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets }));
  const prep = spawnSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { encoding: 'utf8' });
  if (prep.status !== 0) throw new Error(`node --experimental-sea-config failed: ${prep.stderr || prep.stdout}`);

  // 2. A copy of this node, without its symbols.
  const node = await readFile(process.execPath);
  if (!node.includes(`${FUSE}:0`)) throw new Error(`${process.execPath} (node ${process.version}) has no single-executable support (no ${FUSE}:0 in it): build with a node from nodejs.org`);
  await copyFile(process.execPath, tmp);
  await chmod(tmp, 0o755);
  const strip = spawnSync('strip', [tmp], { encoding: 'utf8' });
  if (strip.error?.code === 'ENOENT') console.log('build-sea: strip is not installed (binutils): the executable keeps its symbols');
  else if (strip.status !== 0) throw new Error(`strip failed: ${strip.stderr}`);

  // 3. The blob goes in, and the fuse is flipped. postject's own command, in a process of its
  // own: its ELF library warns about every note section it rewrites ("Can't find string offset
  // for section name '.note.100'", harmless: the notes are kept), and those lines are left out.
  const postject = spawnSync(process.execPath, [join(root, 'node_modules', 'postject', 'dist', 'cli.js'), tmp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { encoding: 'utf8' });
  const noise = /^warning: Can't find string offset for section name '\.note[.\d]*'$|^Start injection of |Injection done!|^\s*$/;
  const said = `${postject.stdout}\n${postject.stderr}`.split('\n').filter((line) => !noise.test(line.replace(/\x1b\[[\d;]*m/g, '')));
  if (postject.status !== 0) throw new Error(`postject failed (${postject.error?.message ?? `exit ${postject.status}`}): ${said.join('\n')}`);
  if (said.length > 0) console.log(said.map((line) => `build-sea: postject: ${line}`).join('\n'));

  // 4. It must run on its own: no node on PATH, nothing of this checkout around it.
  const check = spawnSync(tmp, ['--version'], { encoding: 'utf8', cwd: work, env: { PATH: '/nonexistent', HOME: work } });
  if (check.status !== 0 || check.stdout.trim() !== version || check.stderr !== '') {
    throw new Error(`the built executable does not run: exit ${check.status ?? check.signal}, stdout ${JSON.stringify(check.stdout)}, stderr ${JSON.stringify(check.stderr)}`);
  }
  // And it must really use the binding it carries: a node whose add-on ABI differs would make
  // ssh2 fall back to Node's crypto without a word.
  if (addon) {
    const verbose = spawnSync(tmp, ['--version', '--verbose'], { encoding: 'utf8', cwd: work, env: { PATH: '/nonexistent', HOME: work } });
    if (!/^ssh ciphers: native/m.test(verbose.stdout)) throw new Error(`the built executable does not load its sshcrypto.node: ${JSON.stringify(verbose.stdout + verbose.stderr)}`);
  }
  await rename(tmp, outfile);
  const { size } = await stat(outfile);
  console.log(`build-sea: ${outfile} (${version}, node ${process.version}, ${(size / 1e6).toFixed(1)} MB) in ${((performance.now() - started) / 1000).toFixed(1)}s`);
} catch (err) {
  await rm(tmp, { force: true });
  console.error(`build-sea: ${err.message}`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
