import { readFileSync } from 'node:fs';

/**
 * Set by the helper's build (scripts/build-cli.mjs, esbuild `define`) to package.json's version
 * at build time, so a downloaded helper knows its version with no package.json beside it.
 * Unset when running from a checkout (tsx) or in bundles that do not define it.
 */
declare const __WHARF_VERSION__: string | undefined;

let fromPackage: string | undefined;

/**
 * wharf's version: the one baked into a helper bundle, else package.json's (read once). The
 * read is written with an options object on purpose: the bundlers inline only
 * `readFileSync(new URL(...), 'utf8')`, and a bundle must take the version from its build.
 */
export function wharfVersion(): string {
  if (typeof __WHARF_VERSION__ === 'string') return __WHARF_VERSION__;
  fromPackage ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), { encoding: 'utf8' })) as { version: string }).version;
  return fromPackage;
}

/** `major.minor.patch[-pre][+build]` → its parts, or undefined when it is not one. */
function parseVersion(version: string): { core: number[]; pre: string[] } | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(version.trim());
  if (!match) return undefined;
  return { core: [Number(match[1]), Number(match[2]), Number(match[3])], pre: match[4] ? match[4].split('.') : [] };
}

/**
 * Semver precedence of `a` and `b`: negative when a < b, 0 when equal, positive when a > b;
 * undefined when either is not a version (nothing is concluded then). A pre-release is lower
 * than its release (1.0.0-rc.1 < 1.0.0); numeric identifiers compare as numbers and below
 * alphanumeric ones; build metadata is ignored.
 */
export function compareVersions(a: string, b: string): number | undefined {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return undefined;
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return x.core[i] - y.core[i];
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const [p, q] = [x.pre[i], y.pre[i]];
    if (p === q) continue;
    const [pn, qn] = [/^\d+$/.test(p), /^\d+$/.test(q)];
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return x.pre.length - y.pre.length;
}
