import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveWorkspacePath } from './safe-path.ts';

describe('workspace paths', () => {
  let base: string;
  let root: string;
  beforeAll(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'wharf-path-')));
    root = join(base, 'ws');
    await mkdir(join(root, 'src'), { recursive: true });
    await writeFile(join(root, 'src', 'a.ts'), '');
    await writeFile(join(base, 'secret'), '');
    await symlink('../secret', join(root, 'escape'));
    await symlink(base, join(root, 'up'));
    await symlink('src/a.ts', join(root, 'alias.ts'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('resolves paths inside, through links that stay inside', async () => {
    expect(await resolveWorkspacePath(root, 'src/a.ts')).toEqual({ ok: true, value: { real: join(root, 'src/a.ts'), rel: 'src/a.ts' } });
    expect(await resolveWorkspacePath(root, 'alias.ts')).toEqual({ ok: true, value: { real: join(root, 'src/a.ts'), rel: 'src/a.ts' } });
    expect(await resolveWorkspacePath(root, '.')).toMatchObject({ ok: true, value: { real: root, rel: '' } });
  });

  it('refuses escapes, lexical or by symlink, and malformed paths', async () => {
    for (const p of ['../secret', 'src/../../secret', 'escape', 'up/secret', 'up']) {
      expect(await resolveWorkspacePath(root, p), p).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    }
    for (const p of ['/etc/passwd', 'a\0b', 42, 'x'.repeat(5000)]) {
      expect(await resolveWorkspacePath(root, p)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    }
    expect(await resolveWorkspacePath(root, 'missing.ts')).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });
});
