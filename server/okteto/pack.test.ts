import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployKind } from '../common/index.ts';
import { createIgnoreMatcher, parseIgnoreFile, patternsFor } from './ignore-rules.ts';
import { DEFAULT_PACK_LIMITS, packContext } from './pack.ts';

type Entry = { name: string; type: string; mode: number; linkname?: string | null; content: string; uid: number; mtime: number };

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function entriesOf(archive: Buffer): Promise<Entry[]> {
  const extract = tar.extract();
  const out: Entry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({ name: header.name, type: header.type ?? 'file', mode: header.mode ?? 0, linkname: header.linkname, content: Buffer.concat(chunks).toString('latin1'), uid: header.uid ?? -1, mtime: header.mtime?.getTime() ?? 0 });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(archive);
  await done;
  return out;
}

async function pack(root: string, ignoreText = '', kind: DeployKind = 'deploy', limits = DEFAULT_PACK_LIMITS) {
  const parsed = parseIgnoreFile(ignoreText);
  if (!parsed.ok) throw new Error(parsed.error.message);
  const packed = packContext({ root, matcher: createIgnoreMatcher(patternsFor(parsed.value, kind)), prefix: 'src/', ...limits });
  const archive = await readAll(packed.stream);
  return { archive, summary: await packed.summary };
}

describe('context packer', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-pack-'));
    await mkdir(join(root, 'app/empty'), { recursive: true });
    await writeFile(join(root, 'app/run.sh'), '#!/bin/sh\necho run\n');
    await chmod(join(root, 'app/run.sh'), 0o755);
    await writeFile(join(root, 'app/config.yml'), 'a: 1\n');
    await symlink('config.yml', join(root, 'app/link.yml'));
    await symlink('/does/not/exist', join(root, 'dangling'));
    await writeFile(join(root, 'secret.env'), 'TOKEN=1\n');
    await mkdir(join(root, 'build/deep'), { recursive: true });
    await writeFile(join(root, 'build/out.bin'), 'x');
    await writeFile(join(root, 'build/deep/keep.txt'), 'kept\n');
    await mkdir(join(root, 'node_modules/pkg'), { recursive: true });
    await writeFile(join(root, 'node_modules/pkg/index.js'), 'module.exports = 1\n');
    await writeFile(join(root, 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    await mkdir(join(root, 'a'.repeat(60) + '/' + 'b'.repeat(60)), { recursive: true });
    await writeFile(join(root, 'a'.repeat(60) + '/' + 'b'.repeat(60) + '/long-name.txt'), 'long\n');
    execFileSync('mkfifo', [join(root, 'pipe')]);
    execFileSync('mkfifo', [join(root, 'app/pipe')]);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const ignore = ['secret.env', 'node_modules', 'build', '!build/deep/keep.txt', '[destroy]', 'app'].join('\n');

  it('keeps modes, symlinks and empty folders and applies the ignore rules', async () => {
    const { archive, summary } = await pack(root, ignore);
    const entries = await entriesOf(archive);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.get('src/app/run.sh')).toMatchObject({ type: 'file', mode: 0o755, content: '#!/bin/sh\necho run\n' });
    expect(byName.get('src/app/config.yml')).toMatchObject({ type: 'file', mode: 0o644 });
    expect(byName.get('src/app/link.yml')).toMatchObject({ type: 'symlink', linkname: 'config.yml' });
    expect(byName.get('src/dangling')).toMatchObject({ type: 'symlink', linkname: '/does/not/exist' });
    expect(byName.get('src/app/empty/')).toMatchObject({ type: 'directory' });
    expect(byName.has('src/secret.env')).toBe(false);
    expect([...byName.keys()].some((n) => n.startsWith('src/node_modules'))).toBe(false);
    expect(byName.has('src/build/out.bin')).toBe(false);
    expect(byName.get('src/build/deep/keep.txt')).toMatchObject({ content: 'kept\n' });
    expect(byName.has('src/build/') && byName.has('src/build/deep/')).toBe(true);
    expect(byName.get('src/big.bin')?.content.length).toBe(3 * 1024 * 1024 + 17);
    expect(byName.get(`src/${'a'.repeat(60)}/${'b'.repeat(60)}/long-name.txt`)).toMatchObject({ content: 'long\n' });
    expect(byName.has('src/pipe')).toBe(false);
    // app/ is walked by the reader itself (no rule can tell its contents apart): same rules there.
    expect(byName.has('src/app/pipe')).toBe(false);
    expect([...summary.skipped].sort()).toEqual(['app/pipe', 'pipe']);
    expect(summary.bytes).toBe(archive.length);
    expect(summary.files).toBe(entries.filter((e) => e.type === 'file').length);
    // Parents come before children, so extracting in order works.
    const names = entries.map((e) => e.name);
    expect(names.indexOf('src/build/')).toBeLessThan(names.indexOf('src/build/deep/keep.txt'));
    expect(entries.every((e) => e.uid === 0 && e.mtime === Date.UTC(2000, 0, 1))).toBe(true);
  });

  it('applies the [destroy] section only to destroys', async () => {
    const deploy = await entriesOf((await pack(root, ignore, 'deploy')).archive);
    const destroy = await entriesOf((await pack(root, ignore, 'destroy')).archive);
    expect(deploy.some((e) => e.name === 'src/app/run.sh')).toBe(true);
    expect(destroy.some((e) => e.name.startsWith('src/app'))).toBe(false);
  });

  it('gives the same bytes for the same tree, whatever the owners and times', async () => {
    const first = createHash('sha256').update((await pack(root, ignore)).archive).digest('hex');
    await utimes(join(root, 'app/config.yml'), new Date(2020, 1, 1), new Date(2020, 1, 1));
    await chown(join(root, 'app/config.yml'), 1234, 1234);
    const second = createHash('sha256').update((await pack(root, ignore, 'deploy', { outputBlockBytes: 1000, blocksInFlight: 1 })).archive).digest('hex');
    expect(second).toBe(first);
  });

  it('produces an archive GNU tar reads', async () => {
    const { archive } = await pack(root, ignore);
    const listing = execFileSync('tar', ['-tvf', '-'], { input: archive, encoding: 'utf8' });
    expect(listing).toMatch(/lrwxrwxrwx 0\/0\s+0 2000-01-01 00:00 src\/app\/link\.yml -> config\.yml/);
    expect(listing).toMatch(/-rwxr-xr-x 0\/0\s+19 2000-01-01 00:00 src\/app\/run\.sh/);
  });

  it('skips an excluded folder without listing it when no rule can bring anything back', async () => {
    const parsed = parseIgnoreFile(ignore);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const real = createIgnoreMatcher(patternsFor(parsed.value, 'deploy'));
    const asked: string[] = [];
    const matcher = { ...real, excludes: (path: string) => (asked.push(path), real.excludes(path)) };
    const packed = packContext({ root, matcher, prefix: 'src/', ...DEFAULT_PACK_LIMITS });
    const entries = await entriesOf(await readAll(packed.stream));
    expect(asked).toContain('node_modules');
    expect(asked.filter((p) => p.startsWith('node_modules/'))).toEqual([]);
    // build/ holds a file a `!` rule brings back, so it is walked.
    expect(asked).toContain('build/deep/keep.txt');
    expect(entries.some((e) => e.name === 'src/build/deep/keep.txt')).toBe(true);
  });

  it('packs a file much larger than a block, and many blocks of small files, byte for byte', async () => {
    const big = await mkdtemp(join(tmpdir(), 'wharf-pack-big-'));
    try {
      const content = Buffer.alloc(5 * 1024 * 1024 + 3);
      for (let i = 0; i < content.length; i++) content[i] = (i * 31 + (i >> 12)) & 0xff;
      await writeFile(join(big, 'huge.bin'), content);
      await mkdir(join(big, 'many'));
      for (let i = 0; i < 300; i++) await writeFile(join(big, 'many', `f${String(i).padStart(3, '0')}`), `file ${i}\n`.repeat(i));
      const packed = packContext({ root: big, matcher: createIgnoreMatcher([]), prefix: '', outputBlockBytes: 3000, blocksInFlight: 2 });
      const entries = await entriesOf(await readAll(packed.stream));
      expect(createHash('sha256').update(entries.find((e) => e.name === 'huge.bin')?.content ?? '', 'latin1').digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
      const many = entries.filter((e) => e.name.startsWith('many/f'));
      expect(many.map((e) => e.name)).toEqual(Array.from({ length: 300 }, (_, i) => `many/f${String(i).padStart(3, '0')}`));
      expect(many.every((e, i) => e.content === `file ${i}\n`.repeat(i))).toBe(true);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });

  it('takes back a block the consumer gives back, and never one it still holds or one not its own', async () => {
    const big = await mkdtemp(join(tmpdir(), 'wharf-pack-recycle-'));
    try {
      for (let i = 0; i < 200; i++) await writeFile(join(big, `f${String(i).padStart(3, '0')}`), `${i} `.repeat(100 + i * 7));
      const limits = { outputBlockBytes: 4096, blocksInFlight: 2 };
      const expected = await readAll(packContext({ root: big, matcher: createIgnoreMatcher([]), prefix: '', ...limits }).stream);

      const packed = packContext({ root: big, matcher: createIgnoreMatcher([]), prefix: '', ...limits });
      const copies: Buffer[] = [];
      const held: Array<{ chunk: Buffer; copy: Buffer }> = [];
      const givenBack: Buffer[] = [];
      const foreign: Buffer[] = [];
      let index = 0;
      for await (const c of packed.stream) {
        const chunk = c as Buffer;
        copies.push(Buffer.from(chunk));
        // Every third block is kept (as a socket with queued writes would); the others are
        // given back, some twice, along with a buffer that is not the packer's.
        if (index % 3 === 0) held.push({ chunk, copy: Buffer.from(chunk) });
        else {
          // (A chunk sent while the walker was behind is a small copy, not a block: left alone.)
          const wholeBlock = chunk.buffer.byteLength === limits.outputBlockBytes;
          packed.recycle(chunk);
          if (index % 3 === 1) packed.recycle(chunk);
          if (wholeBlock) givenBack.push(chunk);
          const mine = Buffer.alloc(4096, 1);
          packed.recycle(mine);
          foreign.push(mine);
        }
        index++;
      }
      await packed.summary;
      expect(index).toBeGreaterThan(30);
      expect(Buffer.concat(copies).equals(expected)).toBe(true);
      // Held blocks were never written again after they were handed out.
      expect(held.length).toBeGreaterThan(5);
      expect(held.every(({ chunk, copy }) => chunk.equals(copy))).toBe(true);
      // Given-back blocks went back to the packer to be filled again (their memory moved to
      // its thread, so the consumer's view of them is empty); buffers that were never the
      // packer's are left alone.
      expect(givenBack.length).toBeGreaterThan(10);
      expect(givenBack.filter((chunk) => chunk.length > 0)).toEqual([]);
      expect(foreign.every((b) => b.length === 4096 && b.every((x) => x === 1))).toBe(true);
    } finally {
      await rm(big, { recursive: true, force: true });
    }
  });

  it('stops walking as soon as the consumer goes away (a cancelled deploy), not when the walk ends', async () => {
    const tree = await mkdtemp(join(tmpdir(), 'wharf-pack-cancel-'));
    try {
      for (let d = 0; d < 200; d++) {
        await mkdir(join(tree, `d${String(d).padStart(3, '0')}`));
        for (let f = 0; f < 10; f++) await writeFile(join(tree, `d${String(d).padStart(3, '0')}`, `f${f}`), 'x');
      }
      let matched = 0;
      let atCancel = 0;
      // A rule that needs every name below each folder, so the walker (not the worker) visits them.
      const base = createIgnoreMatcher(['**/*.tmp']);
      const packed = packContext({
        root: tree,
        prefix: '',
        ...DEFAULT_PACK_LIMITS,
        matcher: {
          ...base,
          // Every entry the walker looks at is matched once: the count says how far it walked.
          excludes(path) {
            matched += 1;
            if (matched === 100) {
              atCancel = matched;
              packed.stream.destroy();
            }
            return base.excludes(path);
          },
        },
      });
      packed.stream.on('error', () => {});
      await expect(packed.summary).rejects.toThrow(/stopped/);
      // The walk ends within the folder it was in (one listing is matched in one go), far from
      // the 2,200 entries it would match if it ran on.
      await packed.walked;
      expect(matched - atCancel).toBeLessThan(30);
    } finally {
      await rm(tree, { recursive: true, force: true });
    }
  });

  it('fails clearly for a missing folder', async () => {
    await expect(pack(join(root, 'nope'))).rejects.toThrow(/cannot pack .*nope: ENOENT/);
  });
});
