import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGitignoreMatcher } from './gitignore-matcher.ts';

describe('gitignore matcher', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-ignore-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function tree(files: Record<string, string>): Promise<void> {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), content);
    }
  }

  it('applies nested .gitignore files relative to their directory, deeper rules winning', async () => {
    await tree({
      '.gitignore': 'node_modules/\n*.log\nbuild\n',
      'src/.gitignore': '!keep.log\ngenerated/\n/local.ts\n',
      'src/app.ts': '',
      'src/deep/local.ts': '',
    });
    const m = createGitignoreMatcher(root);
    const at = (p: string) => join(root, p);
    expect(m.isIgnored(at('node_modules'), true)).toBe(true);
    expect(m.isIgnored(at('node_modules/pkg/index.js'), false)).toBe(true);
    // `node_modules/` only matches directories.
    expect(m.isIgnored(at('node_modules'), false)).toBe(false);
    expect(m.isIgnored(at('src/app.ts'), false)).toBe(false);
    expect(m.isIgnored(at('src/debug.log'), false)).toBe(true);
    expect(m.isIgnored(at('src/keep.log'), false)).toBe(false);
    expect(m.isIgnored(at('keep.log'), false)).toBe(true);
    expect(m.isIgnored(at('src/generated'), true)).toBe(true);
    expect(m.isIgnored(at('generated'), true)).toBe(false);
    // Anchored to src/, not to deeper directories.
    expect(m.isIgnored(at('src/local.ts'), false)).toBe(true);
    expect(m.isIgnored(at('src/deep/local.ts'), false)).toBe(false);
    expect(m.isIgnored(at('build/out.js'), false)).toBe(true);
    expect(m.isIgnored(at('.git'), true)).toBe(true);
    expect(m.isIgnored(at('.git/HEAD'), false)).toBe(true);
    expect(m.isIgnored(root, true)).toBe(false);
  });

  it('cannot re-include a file below an ignored directory, as in git', async () => {
    await tree({ '.gitignore': 'vendor/\n!vendor/keep.txt\n' });
    const m = createGitignoreMatcher(root);
    expect(m.isIgnored(join(root, 'vendor/keep.txt'), false)).toBe(true);
  });

  it('lists the ignored names of a directory and rereads rules after invalidate', async () => {
    await tree({ '.gitignore': '*.tmp\n', 'a.tmp': '', 'b.txt': '', 'dist/x.js': '' });
    const m = createGitignoreMatcher(root);
    expect(await m.listIgnored(root)).toEqual(['a.tmp']);
    await writeFile(join(root, '.gitignore'), '*.tmp\ndist/\n');
    expect(await m.listIgnored(root)).toEqual(['a.tmp']);
    m.invalidate(root);
    expect(await m.listIgnored(root)).toEqual(['a.tmp', 'dist']);
  });

  it('reads .git/info/exclude as root rules', async () => {
    await tree({ '.git/info/exclude': 'secret.env\n', 'secret.env': '' });
    const m = createGitignoreMatcher(root);
    expect(m.isIgnored(join(root, 'secret.env'), false)).toBe(true);
  });
});
