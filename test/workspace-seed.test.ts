import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * `seed` copies a folder of the server's own disk into a new workspace: only from under the
 * configured seed root, never the data dir (tokens and keys), never through a symlink out.
 */
describe('seeding a workspace from a server folder', () => {
  let root: string;
  let outside: string;
  let server: TestServer;

  const create = async (target: TestServer, name: string, seed: string) => {
    const res = await target.api('/api/workspaces', { method: 'POST', json: { name, seed } });
    return { status: res.status, message: res.status === 201 ? '' : ((await res.json()) as { error: { message: string } }).error.message };
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-seeds-'));
    outside = await mkdtemp(join(tmpdir(), 'wharf-seeds-outside-'));
    await mkdir(join(root, 'app'));
    await writeFile(join(root, 'app', 'README.md'), 'template\n');
    await writeFile(join(outside, 'secret.txt'), 'not yours\n');
    await symlink(outside, join(root, 'escape'));
    server = await startTestServer({ argv: ['--seed-root', root] });
  });

  afterAll(async () => {
    await server?.dispose();
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('copies a folder under the seed root, named relative to it or in full', async () => {
    expect(await create(server, 'by-name', 'app')).toEqual({ status: 201, message: '' });
    expect(await (await server.api('/api/workspaces/by-name/files/README.md')).text()).toBe('template\n');
    expect((await create(server, 'by-path', join(root, 'app'))).status).toBe(201);
  });

  it('refuses folders outside the root, a symlink out of it, /proc/self/root and the data dir', async () => {
    for (const [name, seed, why] of [
      ['out', outside, /outside the seed root/],
      ['climb', '../', /outside the seed root/],
      ['link', 'escape', /outside the seed root/],
      ['proc', `/proc/self/root${outside}`, /outside the seed root/],
      ['missing', 'nope', /does not exist/],
    ] as const) {
      const answer = await create(server, name, seed);
      expect({ name, status: answer.status }).toEqual({ name, status: 400 });
      expect(answer.message).toMatch(why);
      expect((await server.api(`/api/workspaces/${name}`)).status).toBe(404);
    }
  });

  it('is off unless a seed root is configured, and never reaches the data dir', async () => {
    const plain = await startTestServer({ argv: ['--seed-root', ''] });
    try {
      const answer = await create(plain, 'nothing', root);
      expect(answer.status).toBe(400);
      expect(answer.message).toMatch(/--seed-root/);
    } finally {
      await plain.dispose();
    }
    const wide = await startTestServer({ argv: ['--seed-root', '/'] });
    try {
      const answer = await create(wide, 'token', wide.dataDir);
      expect(answer.status).toBe(400);
      expect(answer.message).toMatch(/data dir/);
      expect((await create(wide, 'parent', join(wide.dataDir, '..'))).status).toBe(400);
    } finally {
      await wide.dispose();
    }
  });
});
