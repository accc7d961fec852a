import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packSeedFolder } from './seed-pack.ts';

async function listEntries(folder: string): Promise<Array<{ name: string; type: string; body?: string; linkname?: string; mode?: number }>> {
  const extract = tar.extract();
  const packed = packSeedFolder(folder);
  packed.on('error', (err) => extract.destroy(err));
  packed.pipe(extract as unknown as NodeJS.WritableStream);
  const out: Array<{ name: string; type: string; body?: string; linkname?: string; mode?: number }> = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const { name, type, linkname, mode } = entry.header;
    out.push({ name, type: type ?? '', ...(type === 'file' ? { body: Buffer.concat(chunks).toString(), mode: (mode ?? 0) & 0o777 } : {}), ...(linkname ? { linkname } : {}) });
  }
  return out;
}

describe('packSeedFolder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-seed-pack-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('packs files (with their mode), folders (empty ones too) and links kept verbatim', async () => {
    await mkdir(join(dir, 'src'));
    await mkdir(join(dir, 'empty'));
    await writeFile(join(dir, 'src', 'run.sh'), 'echo hi\n', { mode: 0o755 });
    await writeFile(join(dir, 'README.md'), 'template\n');
    await symlink('/etc/passwd', join(dir, 'outside'));
    expect(await listEntries(dir)).toEqual([
      { name: 'README.md', type: 'file', body: 'template\n', mode: 0o644 },
      { name: 'empty', type: 'directory' },
      { name: 'outside', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'src', type: 'directory' },
      { name: 'src/run.sh', type: 'file', body: 'echo hi\n', mode: 0o755 },
    ]);
  });

  it('fails the stream when the folder cannot be read', async () => {
    await expect(listEntries(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
