import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

export type GitignoreMatcher = {
  /** `path` is absolute under the root; `isDir` matters for patterns like `build/`. */
  isIgnored(path: string, isDir: boolean): boolean;
  /** Forget the rules read from `dir` (its .gitignore changed). */
  invalidate(dir: string): void;
  /** Names in `dir` that git would ignore (for dimming them in the file tree). */
  listIgnored(dir: string): Promise<string[]>;
};

/**
 * gitignore semantics over a working tree: every directory's `.gitignore` applies to the paths
 * below it, deeper files win, a negation re-includes, and nothing below an ignored directory can
 * be re-included (as in git). `.git` internals are always ignored. Rules are read lazily and kept
 * until `invalidate`; the watcher calls this for every path it sees, so it must be synchronous.
 */
export function createGitignoreMatcher(root: string): GitignoreMatcher {
  const rules = new Map<string, Ignore | null>();
  const dirVerdicts = new Map<string, boolean>();

  function readRules(dirRel: string): Ignore | null {
    const cached = rules.get(dirRel);
    if (cached !== undefined) return cached;
    const sources: string[] = [];
    if (dirRel === '') sources.push(join(root, '.git', 'info', 'exclude'));
    sources.push(join(root, dirRel, '.gitignore'));
    let ig: Ignore | null = null;
    for (const file of sources) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      ig ??= ignore();
      ig.add(text);
    }
    rules.set(dirRel, ig);
    return ig;
  }

  /** Whether `parts` (a path relative to root) is ignored by itself, assuming its parents are not. */
  function matchesOwnRules(parts: string[], isDir: boolean): boolean {
    let ignored = false;
    for (let depth = 0; depth < parts.length; depth++) {
      const ig = readRules(parts.slice(0, depth).join('/'));
      if (!ig) continue;
      const rel = parts.slice(depth).join('/') + (isDir ? '/' : '');
      const verdict = ig.test(rel);
      if (verdict.ignored) ignored = true;
      else if (verdict.unignored) ignored = false;
    }
    return ignored;
  }

  function isDirIgnored(parts: string[]): boolean {
    const key = parts.join('/');
    const cached = dirVerdicts.get(key);
    if (cached !== undefined) return cached;
    const verdict = (parts.length > 1 && isDirIgnored(parts.slice(0, -1))) || matchesOwnRules(parts, true);
    dirVerdicts.set(key, verdict);
    return verdict;
  }

  function isIgnored(path: string, isDir: boolean): boolean {
    const rel = relative(root, path);
    if (rel === '' || rel.startsWith('..')) return false;
    const parts = rel.split(sep);
    if (parts.includes('.git')) return true;
    if (parts.length > 1 && isDirIgnored(parts.slice(0, -1))) return true;
    return isDir ? isDirIgnored(parts) : matchesOwnRules(parts, false);
  }

  return {
    isIgnored,
    invalidate(dir: string): void {
      const rel = relative(root, dir);
      rules.delete(rel === '.' ? '' : rel);
      dirVerdicts.clear();
    },
    async listIgnored(dir: string): Promise<string[]> {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries
        .filter((e) => isIgnored(join(dir, e.name), e.isDirectory()))
        .map((e) => e.name)
        .sort();
    },
  };
}
