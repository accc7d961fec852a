// What the bundling scripts (build-agent.mjs, build-cli.mjs) and build.mjs share: the inliner of
// files read beside a module, the check that a bundle holds none of another program's code, and
// the staleness test of `npm run build -- --if-stale`.
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Files that modules read beside themselves at load time (`readFileSync(new URL('./x',
 * import.meta.url), 'utf8')`) are inlined: a bundle has nothing of the checkout beside it.
 */
export const inlineSiblingFiles = {
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

/** `node_modules/@scope/name/...` or `node_modules/name/...` (the innermost one) → the package name. */
function packageOf(path) {
  const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*\/node_modules\/)/.exec(path);
  return match?.[1];
}

/**
 * What a build's metafile shows of code that belongs to another program: a package of
 * `packages` (bundled, or left external), or one of our files that `isForbiddenFile` names —
 * anything the entry's imports reach, used or not. The answer (a message, or undefined when
 * there is none) shows how the entry reached it, so the import to cut is plain.
 */
export function findForeignCode(metafile, { bundle, packages, isForbiddenFile, why }) {
  const inputs = Object.entries(metafile.inputs);
  /** Each offender, with the input that brought it in: `[what, path or importer]`. */
  const offending = [];
  for (const [path, input] of inputs) {
    const pkg = packageOf(path);
    if ((pkg && packages.includes(pkg)) || (!pkg && isForbiddenFile(path))) offending.push([pkg ?? path, path]);
    for (const imported of input.imports) {
      const name = imported.path.startsWith('@') ? imported.path.split('/').slice(0, 2).join('/') : imported.path.split('/')[0];
      if (imported.external && packages.includes(name)) offending.push([`${name} (left external)`, path]);
    }
  }
  if (offending.length === 0) return undefined;
  // Who first imported each input, to walk from the first offender back to the entry.
  const importer = new Map();
  for (const [path, input] of inputs) for (const imported of input.imports) if (!importer.has(imported.path)) importer.set(imported.path, path);
  const chain = [offending[0][1]];
  while (importer.has(chain.at(-1)) && !chain.includes(importer.get(chain.at(-1)))) chain.push(importer.get(chain.at(-1)));
  // From the entry down to where the foreign code starts (not on through the package's own files).
  chain.reverse();
  const firstForeign = chain.findIndex((path) => packages.includes(packageOf(path)) || (!packageOf(path) && isForbiddenFile(path)));
  if (firstForeign >= 0) chain.length = firstForeign + 1;
  const names = [...new Set(offending.map(([what]) => what))];
  return (
    `${bundle} must not contain ${why}, but it reached ${names.slice(0, 8).join(', ')}${names.length > 8 ? ` and ${names.length - 8} more` : ''}.\n` +
      `  import chain: ${chain.join(' → ')}`
  );
}

/**
 * Code of the workspace agent (the same split the lint makes in eslint.config.js): the agent's
 * composition root, server/agent/, and the agent/ half of a feature folder.
 */
export function isAgentFile(path) {
  const parts = path.split('/');
  return path === 'server/agent-main.ts' || (parts[0] === 'server' && (parts[1] === 'agent' || (parts.length >= 4 && parts[2] === 'agent')));
}

/** Code of the control server: its composition root and entry, http/, workspace/ and the server/ half of a feature folder. */
export function isServerFile(path) {
  const parts = path.split('/');
  if (parts[0] !== 'server') return false;
  return ['server/main.ts', 'server/serve.ts'].includes(path) || ['http', 'workspace'].includes(parts[1]) || (parts.length >= 4 && parts[2] === 'server');
}

/** Newest modification time (ms) of the files under `paths`, skipping unit tests; 0 when none exists. */
export function newestMtime(paths, skip = (path) => path.endsWith('.test.ts')) {
  let newest = 0;
  const visit = (path) => {
    let info;
    try {
      info = statSync(path);
    } catch {
      return;
    }
    if (info.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
    else if (!skip(path)) newest = Math.max(newest, info.mtimeMs);
  };
  for (const path of paths) visit(path);
  return newest;
}

/** Modification time (ms) of `path`, or 0 when it does not exist. */
export function mtimeOf(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** What every bundle of server/ code is made from: its sources, the locked packages, the build scripts. */
export const BUNDLE_SOURCES = [join(root, 'server'), join(root, 'package-lock.json'), join(root, 'scripts', 'bundle-lib.mjs')];
