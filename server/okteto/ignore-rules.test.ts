import createGitIgnore from 'ignore';
import { describe, expect, it } from 'vitest';
import { IGNORE_CASES } from './ignore-cases.ts';
import { createIgnoreMatcher, parseIgnoreFile, patternsFor } from './ignore-rules.ts';

describe('.oktetoignore matching (Docker semantics)', () => {
  it.each(IGNORE_CASES.map(([patterns, path, excluded]) => ({ patterns, path, excluded })))(
    '$patterns vs $path → excluded=$excluded',
    ({ patterns, path, excluded }) => {
      const parsed = parseIgnoreFile(patterns.join('\n'));
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect(createIgnoreMatcher(patternsFor(parsed.value, 'deploy')).excludes(path)).toBe(excluded);
    },
  );

  it('has at least 30 cases, and gitignore semantics would get some of them wrong', () => {
    expect(IGNORE_CASES.length).toBeGreaterThanOrEqual(30);
    const differs = IGNORE_CASES.filter(([patterns, path, excluded]) => {
      try {
        return createGitIgnore().add(patterns).ignores(path) !== excluded;
      } catch {
        return true;
      }
    });
    expect(differs.map(([p, path]) => `${p.join(',')}:${path}`)).toEqual(expect.arrayContaining(['foo:a/foo', '*.log:sub/b.log']));
  });

  it('says a folder decides everything inside it only when the full matcher agrees, for every case', () => {
    let decided = 0;
    for (const [patterns, path] of IGNORE_CASES) {
      const parsed = parseIgnoreFile(patterns.join('\n'));
      if (!parsed.ok) throw new Error(parsed.error.message);
      const matcher = createIgnoreMatcher(patternsFor(parsed.value, 'deploy'));
      const parts = path.split('/');
      for (let depth = 1; depth < parts.length; depth++) {
        const folder = parts.slice(0, depth).join('/');
        if (!matcher.decidesBelow(folder)) continue;
        decided++;
        expect(matcher.excludes(path), `${patterns.join(',')}: ${folder} decides ${path}`).toBe(matcher.excludes(folder));
      }
    }
    expect(decided).toBeGreaterThan(5);
    const matcher = createIgnoreMatcher(['node_modules', '*.log', 'docs/*/draft', '!docs/keep']);
    expect(matcher.decidesBelow('src')).toBe(true);
    expect(matcher.decidesBelow('docs')).toBe(false);
    expect(matcher.decidesBelow('docs/a')).toBe(false);
    expect(matcher.decidesBelow('docs/a/b')).toBe(true);
    expect(createIgnoreMatcher(['**/*.tmp']).decidesBelow('src')).toBe(false);
    expect(createIgnoreMatcher(['src/[ab]']).decidesBelow('src')).toBe(false);
  });

  it('matches classes, escapes and ** like Docker', () => {
    const excludes = (pattern: string, path: string) => createIgnoreMatcher([pattern]).excludes(path);
    expect(excludes('file[0-9].txt', 'file7.txt')).toBe(true);
    expect(excludes('file[0-9].txt', 'filex.txt')).toBe(false);
    expect(excludes('file[^0-9].txt', 'filex.txt')).toBe(true);
    expect(excludes('file[!0-9].txt', 'file7.txt')).toBe(false);
    expect(excludes('[]x]', ']')).toBe(true);
    expect(excludes('a\\*b', 'a*b')).toBe(true);
    expect(excludes('a\\*b', 'axb')).toBe(false);
    expect(excludes('a/**/b', 'a/b')).toBe(true);
    expect(excludes('a/**/b', 'a/x/y/b')).toBe(true);
    expect(excludes('a/**/b', 'a/xb')).toBe(false);
    expect(excludes('a**b', 'ax/b')).toBe(true);
  });

  it('matches many wildcards against a long name in linear time (a backtracking regexp took 25 s for one)', () => {
    const pattern = `${'*a'.repeat(12)}X`;
    const name = 'a'.repeat(40);
    const matcher = createIgnoreMatcher([pattern, `!${pattern}`, `sub/${pattern}/**`]);
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      expect(matcher.excludes(name)).toBe(false);
      expect(matcher.excludes(`sub/${name}/${name}`)).toBe(false);
    }
    // Linear: about 2 ms here; a generous bound that no backtracking matcher meets.
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('.oktetoignore sections', () => {
  const text = ['# comment', 'secrets.txt', '*.tmp', '[deploy]', 'destroy-only-needed/', '[destroy]', 'deploy-only-needed', '!keep.tmp', '[weird]', 'x'].join('\n');

  it('applies root lines everywhere and section lines to their kind only', () => {
    const parsed = parseIgnoreFile(text);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const deploy = createIgnoreMatcher(patternsFor(parsed.value, 'deploy'));
    const destroy = createIgnoreMatcher(patternsFor(parsed.value, 'destroy'));
    expect(deploy.excludes('secrets.txt') && destroy.excludes('secrets.txt')).toBe(true);
    expect(deploy.excludes('destroy-only-needed/a')).toBe(true);
    expect(destroy.excludes('destroy-only-needed/a')).toBe(false);
    expect(deploy.excludes('deploy-only-needed')).toBe(false);
    expect(destroy.excludes('deploy-only-needed')).toBe(true);
    expect(deploy.excludes('keep.tmp')).toBe(true);
    expect(destroy.excludes('keep.tmp')).toBe(false);
    expect(deploy.excludes('x') || destroy.excludes('x')).toBe(false);
    expect(parsed.value.warnings).toEqual(['.oktetoignore:9: unknown section [weird]; its lines are not used']);
  });

  it('refuses a broken pattern with its line number', () => {
    const parsed = parseIgnoreFile('ok\n[deploy]\nbad[\n');
    expect(parsed).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^\.oktetoignore:3: bad pattern "bad\[": invalid syntax/) } });
  });
});

describe('skipping excluded folders', () => {
  it('knows when no "!" rule can reach inside a folder', () => {
    const none = createIgnoreMatcher(['node_modules']);
    expect(none.mayReinclude('node_modules')).toBe(false);
    const some = createIgnoreMatcher(['build', 'node_modules', '!build/keep.txt', '!src/*/x']);
    expect(some.mayReinclude('build')).toBe(true);
    expect(some.mayReinclude('node_modules')).toBe(false);
    expect(some.mayReinclude('src')).toBe(true);
    expect(some.mayReinclude('src/a')).toBe(true);
    expect(some.mayReinclude('other/a')).toBe(false);
    expect(createIgnoreMatcher(['x', '!**/keep']).mayReinclude('x')).toBe(true);
    expect(createIgnoreMatcher(['a/b', '!a']).mayReinclude('a/b')).toBe(true);
  });
});
