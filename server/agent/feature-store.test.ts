import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFeatureStore, type FeatureStore } from './feature-store.ts';

describe('feature store', () => {
  let dir: string;
  let store: FeatureStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-store-'));
    store = createFeatureStore({ dir: join(dir, 'store'), maxValueBytes: 1000 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads a key never written as version 0 without a value', async () => {
    expect(await store.read('deploys')).toEqual({ ok: true, value: { version: 0 } });
  });

  it('writes one file per key and counts versions', async () => {
    expect(await store.write('deploys', [1], 0)).toEqual({ ok: true, value: { version: 1 } });
    expect(await store.write('deploys', [1, 2], 1)).toEqual({ ok: true, value: { version: 2 } });
    expect(await store.read('deploys')).toEqual({ ok: true, value: { version: 2, value: [1, 2] } });
    expect(await readdir(join(dir, 'store'))).toEqual(['deploys.json']);
  });

  it('refuses a write computed from an older version, naming the current one', async () => {
    await store.write('shares', ['a'], 0);
    const late = await store.write('shares', ['b'], 0);
    expect(late).toMatchObject({ ok: false, error: { code: 'conflict', version: 1 } });
    expect((await store.read('shares')).ok && (await store.read('shares'))).toMatchObject({ value: { value: ['a'] } });
  });

  it('lets only one of two racing writers from the same version win', async () => {
    const results = await Promise.all([store.write('k', 'first', 0), store.write('k', 'second', 0)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.error.code === 'conflict')).toHaveLength(1);
  });

  it('bounds the size of a value and the shape of a key', async () => {
    expect(await store.write('big', 'x'.repeat(2000), 0)).toMatchObject({ ok: false, error: { code: 'too_large' } });
    for (const key of ['../escape', '.hidden', 'a/b', '']) {
      expect(await store.read(key)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    }
  });

  it('reads a broken file as never written, and the next write replaces it', async () => {
    await store.write('k', 1, 0);
    await writeFile(join(dir, 'store', 'k.json'), '{not json');
    expect(await store.read('k')).toEqual({ ok: true, value: { version: 0 } });
    expect(await store.write('k', 2, 0)).toEqual({ ok: true, value: { version: 1 } });
  });

  it('imports only the keys it does not have yet', async () => {
    await store.write('kept', 'newer', 0);
    const legacy = join(dir, 'legacy.json');
    await writeFile(legacy, JSON.stringify({ kept: 'older', moved: [1], '../bad': 1 }));
    expect(await store.importMissing(legacy)).toEqual(['moved']);
    expect(await store.read('kept')).toEqual({ ok: true, value: { version: 1, value: 'newer' } });
    expect(await store.read('moved')).toEqual({ ok: true, value: { version: 1, value: [1] } });
    expect(await store.importMissing(join(dir, 'missing.json'))).toEqual([]);
  });
});
