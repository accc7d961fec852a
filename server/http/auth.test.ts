import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAuthSecrets } from './auth.ts';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('loadAuthSecrets', () => {
  it('generates tokens a user can paste after --token (never starting with a dash)', async () => {
    // With base64url, about 4 in 5 runs of 100 tokens produced one starting with "-" or "_".
    for (let i = 0; i < 100; i++) {
      const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
      dirs.push(dir);
      const { token, generated } = await loadAuthSecrets(dir, undefined);
      expect(generated).toBe(true);
      expect(token).toMatch(/^[0-9a-f]{48}$/);
    }
  });

  it('keeps the generated token across restarts and prefers a given one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
    dirs.push(dir);
    const first = await loadAuthSecrets(dir, undefined);
    const again = await loadAuthSecrets(dir, undefined);
    expect(again.token).toBe(first.token);
    expect(again.generated).toBe(false);
    expect((await readFile(join(dir, 'token'), 'utf8')).trim()).toBe(first.token);
    const given = await loadAuthSecrets(dir, 'my-own-token');
    expect(given.token).toBe('my-own-token');
  });
});
