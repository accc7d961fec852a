import { copyFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

// The helper download serves what `npm run build` made (the integration tests' globalSetup,
// test/support/build-artifacts.ts, builds dist/wharf.cjs when stale); the server never builds.
const built = join(dirname(dirname(fileURLToPath(import.meta.url))), 'dist', 'wharf.cjs');

describe('GET /api/downloads/wharf.js', () => {
  let server: TestServer;
  let artifacts: string;

  beforeAll(async () => {
    artifacts = await mkdtemp(join(tmpdir(), 'wharf-artifacts-'));
    server = await startTestServer({ argv: ['--artifacts-dir', artifacts] });
  });
  afterAll(async () => {
    await server?.dispose();
    await rm(artifacts, { recursive: true, force: true });
  });

  it('answers 503 naming "npm run build" while the helper is not built, and serves it once it is', async () => {
    const missing = await server.api('/api/downloads/wharf.js');
    expect(missing.status).toBe(503);
    const { error } = (await missing.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/npm run build/);
    expect(error.message).toContain(join(artifacts, 'wharf.cjs'));

    await copyFile(built, join(artifacts, 'wharf.cjs'));
    const res = await server.api('/api/downloads/wharf.js');
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(await readFile(built))).toBe(true);
  });

  it('serves a rebuilt helper without a restart, with a new ETag', async () => {
    await copyFile(built, join(artifacts, 'wharf.cjs'));
    const first = await server.api('/api/downloads/wharf.js');
    const etag = first.headers.get('etag') as string;
    await first.arrayBuffer();
    expect((await server.api('/api/downloads/wharf.js', { headers: { 'if-none-match': etag } })).status).toBe(304);

    // As the build does it: a new file renamed over the old one.
    await writeFile(join(artifacts, 'wharf.cjs.tmp'), '#!/usr/bin/env node\n// rebuilt\n');
    await rename(join(artifacts, 'wharf.cjs.tmp'), join(artifacts, 'wharf.cjs'));
    const again = await server.api('/api/downloads/wharf.js', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(200);
    expect(again.headers.get('etag')).not.toBe(etag);
    expect(await again.text()).toBe('#!/usr/bin/env node\n// rebuilt\n');
  });
});
