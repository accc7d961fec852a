import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPathJail, DEFAULT_SFTP_LIMITS, formatLongname, serveSftp, type SftpLimits, type SftpOptions } from './sftp-server.ts';

const { STATUS_CODE } = ssh2.utils.sftp;

type Session = { sftp: SFTPWrapper; close(): void };

/** A real ssh2 server whose `sftp` subsystem is ours, and a real ssh2 client, over 127.0.0.1. */
async function startSftp(root: string, limits?: SftpLimits, options?: SftpOptions): Promise<{ connect(): Promise<Session>; stop(): Promise<void> }> {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () => client.on('session', (accept) => accept().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), root, limits, options))));
    client.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    connect: () =>
      new Promise((resolve, reject) => {
        const client = new ssh2.Client();
        client.once('error', reject);
        client.once('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ sftp, close: () => client.end() }))));
        client.connect({ host: '127.0.0.1', port, username: 'u', password: 'p' });
      }),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Runs an SFTP client call; resolves with its result or with the error's status code. */
function call<T>(fn: (cb: (err: (Error & { code?: number }) | null | undefined, value?: T) => void) => void): Promise<{ ok: true; value: T } | { ok: false; code: number | undefined; message: string }> {
  return new Promise((resolve) => {
    fn((err, value) => (err ? resolve({ ok: false, code: err.code, message: err.message }) : resolve({ ok: true, value: value as T })));
  });
}

function readAll(sftp: SFTPWrapper, path: string) {
  return call<Buffer>((cb) => sftp.readFile(path, cb));
}

describe('sftp server', () => {
  let base: string;
  let root: string;
  let outside: string;
  let server: Awaited<ReturnType<typeof startSftp>>;
  let session: Session;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'wharf-sftp-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    server = await startSftp(root);
  });
  afterAll(async () => {
    session?.close();
    await server.stop();
    await rm(base, { recursive: true, force: true });
  });
  beforeEach(async () => {
    session?.close();
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'top secret');
    session = await server.connect();
  });

  it('shows the workspace as / and keeps .. at the root', async () => {
    const { sftp } = session;
    expect(await call((cb) => sftp.realpath('.', cb))).toEqual({ ok: true, value: '/' });
    expect(await call((cb) => sftp.realpath('../../..', cb))).toEqual({ ok: true, value: '/' });
    await writeFile(join(root, 'a.txt'), 'inside');
    const climbed = await readAll(sftp, '/../../a.txt');
    expect(climbed.ok && climbed.value.toString()).toBe('inside');
    expect(await readAll(sftp, '../outside/secret.txt')).toMatchObject({ ok: false, code: STATUS_CODE.NO_SUCH_FILE });
  });

  it('writes, reads, lists, stats, renames and removes', async () => {
    const { sftp } = session;
    expect((await call((cb) => sftp.mkdir('/src', cb))).ok).toBe(true);
    const payload = Buffer.alloc(700_000, 7);
    payload.write('head');
    expect((await call((cb) => sftp.writeFile('/src/big.bin', payload, cb))).ok).toBe(true);
    expect((await readFile(join(root, 'src/big.bin'))).equals(payload)).toBe(true);
    const back = await readAll(sftp, 'src/big.bin');
    expect(back.ok && back.value.equals(payload)).toBe(true);

    const listed = await call<ssh2.FileEntry[]>((cb) => sftp.readdir('/src', cb));
    expect(listed.ok && listed.value.map((e) => e.filename)).toEqual(['big.bin']);
    expect(listed.ok && listed.value[0].longname).toMatch(/^-rw.* 700000 .* big\.bin$/);
    const stats = await call<ssh2.Stats>((cb) => sftp.stat('/src/big.bin', cb));
    expect(stats.ok && stats.value.size).toBe(700_000);

    await writeFile(join(root, 'other.txt'), 'keep me');
    // v3 RENAME never replaces: the existing file is untouched.
    expect(await call((cb) => sftp.rename('/src/big.bin', '/other.txt', cb))).toMatchObject({ ok: false, code: STATUS_CODE.FAILURE, message: expect.stringMatching(/EEXIST/) });
    expect(await readFile(join(root, 'other.txt'), 'utf8')).toBe('keep me');
    expect((await call((cb) => sftp.rename('/src/big.bin', '/src/moved.bin', cb))).ok).toBe(true);
    expect(existsSync(join(root, 'src/moved.bin'))).toBe(true);

    expect(await call((cb) => sftp.rmdir('/src', cb))).toMatchObject({ ok: false, code: STATUS_CODE.FAILURE });
    expect((await call((cb) => sftp.unlink('/src/moved.bin', cb))).ok).toBe(true);
    expect((await call((cb) => sftp.rmdir('/src', cb))).ok).toBe(true);
    expect(existsSync(join(root, 'src'))).toBe(false);
    expect(await call((cb) => sftp.rmdir('/', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(await call((cb) => sftp.stat('/nope', cb))).toMatchObject({ ok: false, code: STATUS_CODE.NO_SUCH_FILE });
  });

  it('refuses to follow a symlink that leads outside, but lists and reads the link itself', async () => {
    const { sftp } = session;
    await symlink(outside, join(root, 'escape-dir'));
    await symlink(join(outside, 'secret.txt'), join(root, 'escape-file'));
    await symlink('../outside/secret.txt', join(root, 'escape-relative'));

    for (const path of ['/escape-file', '/escape-relative', '/escape-dir/secret.txt']) {
      expect(await readAll(sftp, path)).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
      expect(await call((cb) => sftp.stat(path, cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    }
    expect(await call((cb) => sftp.readdir('/escape-dir', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(await call((cb) => sftp.writeFile('/escape-dir/planted.txt', 'x', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(await call((cb) => sftp.mkdir('/escape-dir/new', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(await call((cb) => sftp.unlink('/escape-dir/secret.txt', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(await call((cb) => sftp.realpath('/escape-dir', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    expect(existsSync(join(outside, 'secret.txt'))).toBe(true);

    const lstat = await call<ssh2.Stats>((cb) => sftp.lstat('/escape-dir', cb));
    expect(lstat.ok && lstat.value.isSymbolicLink()).toBe(true);
    expect(await call((cb) => sftp.readlink('/escape-relative', cb))).toEqual({ ok: true, value: '../outside/secret.txt' });
    // Removing the link removes the link, never its target.
    expect((await call((cb) => sftp.unlink('/escape-file', cb))).ok).toBe(true);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('top secret');
  });

  it('will not create through a dangling link that points outside', async () => {
    const { sftp } = session;
    await symlink(join(outside, 'created-by-attacker'), join(root, 'dangling'));
    expect(await call((cb) => sftp.writeFile('/dangling', 'x', cb))).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
    expect(existsSync(join(outside, 'created-by-attacker'))).toBe(false);
    // A dangling link that stays inside is followed, as the kernel would.
    await symlink('made-later.txt', join(root, 'inner-dangling'));
    expect((await call((cb) => sftp.writeFile('/inner-dangling', 'hello', cb))).ok).toBe(true);
    expect(await readFile(join(root, 'made-later.txt'), 'utf8')).toBe('hello');
  });

  it('creates links: escaping ones may exist but are not followed; absolute targets are in the client view', async () => {
    const { sftp } = session;
    await writeFile(join(root, 'real.txt'), 'real');
    expect((await call((cb) => sftp.symlink('/real.txt', '/abs-link', cb))).ok).toBe(true);
    expect(await readlink(join(root, 'abs-link'))).toBe(join(await createPathJail(root).realRoot(), 'real.txt'));
    expect(await call((cb) => sftp.readlink('/abs-link', cb))).toEqual({ ok: true, value: '/real.txt' });
    const viaAbs = await readAll(sftp, '/abs-link');
    expect(viaAbs.ok && viaAbs.value.toString()).toBe('real');

    expect((await call((cb) => sftp.symlink('../../outside/secret.txt', '/sneaky', cb))).ok).toBe(true);
    expect(await readAll(sftp, '/sneaky')).toMatchObject({ ok: false, code: STATUS_CODE.PERMISSION_DENIED });
  });

  it('answers bad input with a status instead of failing the session', async () => {
    const { sftp } = session;
    expect(await call((cb) => sftp.stat('/a\0b', cb))).toMatchObject({ ok: false, code: STATUS_CODE.BAD_MESSAGE });
    expect(await call((cb) => sftp.close(Buffer.from('nope'), cb))).toMatchObject({ ok: false, code: STATUS_CODE.FAILURE });
    expect(await call((cb) => sftp.read(Buffer.from('nope'), Buffer.alloc(4), 0, 4, 0, cb))).toMatchObject({ ok: false, code: STATUS_CODE.FAILURE });
    expect(await call((cb) => sftp.readdir('/', cb))).toMatchObject({ ok: true });
  });

  it('does not hang on a fifo', async () => {
    const { sftp } = session;
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(root, 'pipe')]);
    // Without a writer, a blocking open would wait forever; the read fails instead.
    expect(await readAll(sftp, '/pipe')).toMatchObject({ ok: false });
    expect(await call((cb) => sftp.writeFile('/pipe', 'x', cb))).toMatchObject({ ok: false });
    expect((await call((cb) => sftp.readdir('/', cb))).ok).toBe(true);
  });

  it('caps open handles per session', async () => {
    const small = await startSftp(root, { ...DEFAULT_SFTP_LIMITS, maxOpenHandles: 2 });
    const s = await small.connect();
    await writeFile(join(root, 'f'), 'x');
    const a = await call<Buffer>((cb) => s.sftp.open('/f', 'r', cb));
    const b = await call<Buffer>((cb) => s.sftp.open('/f', 'r', cb));
    expect(a.ok && b.ok).toBe(true);
    expect(await call((cb) => s.sftp.open('/f', 'r', cb))).toMatchObject({ ok: false, message: expect.stringMatching(/EMFILE/) });
    if (a.ok) await call((cb) => s.sftp.close(a.value, cb));
    expect((await call((cb) => s.sftp.open('/f', 'r', cb))).ok).toBe(true);
    s.close();
    await small.stop();
  });

  it('lists bare names, with the same attributes, for a client that does not read ls -l lines', async () => {
    const bare = await startSftp(root, DEFAULT_SFTP_LIMITS, { longnames: false });
    const s = await bare.connect();
    await writeFile(join(root, 'listed.txt'), 'abc');
    const listed = await call<ssh2.FileEntry[]>((cb) => s.sftp.readdir('/', cb));
    const entry = listed.ok ? listed.value.find((e) => e.filename === 'listed.txt') : undefined;
    expect(entry).toMatchObject({ filename: 'listed.txt', longname: 'listed.txt', attrs: { size: 3 } });
    s.close();
    await bare.stop();
  });
});

describe('longname', () => {
  it('looks like ls -l', () => {
    const info = { mode: 0o100644, nlink: 1, uid: 1000, gid: 1000, size: 42, mtime: new Date(2020, 0, 5, 10, 30), mtimeMs: new Date(2020, 0, 5, 10, 30).getTime() };
    expect(formatLongname('x.txt', info as never, new Date(2020, 1, 1).getTime())).toBe('-rw-r--r--   1 1000     1000           42 Jan  5 10:30 x.txt');
    expect(formatLongname('old', { ...info, mode: 0o40755 } as never, new Date(2024, 1, 1).getTime())).toMatch(/^drwxr-xr-x .* Jan  5  2020 old$/);
  });
});
