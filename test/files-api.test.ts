import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { WorkspaceFs } from './support/workspace-fs.ts';

const WS = 'files1';
const UPLOAD_LIMIT = 2 * 1024 * 1024;

const sha = (data: Buffer | string) => `"${createHash('sha256').update(data).digest('hex')}"`;

type RawResponse = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; json(): { error: { code: string; message: string } } };

/** A request with the path sent byte for byte: fetch would fold `..` and `%2e%2e` before sending. */
function raw(server: TestServer, method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<RawResponse> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${server.token}`, ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

async function tarOf(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string | Buffer; linkname?: string; mode?: number }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode };
    if (header.type === 'file') pack.entry(header, e.body ?? '');
    else pack.entry(header).end(undefined);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function untar(data: Buffer): Promise<Map<string, { type: string; body: Buffer; linkname?: string; mode: number }>> {
  const out = new Map<string, { type: string; body: Buffer; linkname?: string; mode: number }>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(Buffer.from(c as Uint8Array));
      out.set(entry.header.name, { type: entry.header.type, body: Buffer.concat(chunks), linkname: entry.header.linkname || undefined, mode: entry.header.mode });
    }
  })();
  extract.end(data);
  await done;
  return out;
}

describe('files API', () => {
  let server: TestServer;
  let fs: WorkspaceFs;
  /** A folder in the workspace's machine outside its root (in its /tmp), as its programs name it. */
  let outside: string;
  /** The workspace's root folder as its programs name it. */
  let workspaceDir: string;

  const files = (path: string) => `/api/workspaces/${WS}/files/${path}`;
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => server.api(files(path), init);
  const put = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    api(path, { method: 'PUT', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  const text = async (path: string) => {
    const res = await api(path);
    return { status: res.status, body: await res.text(), etag: res.headers.get('etag') };
  };
  // Programs in the workspace, whatever the driver: files are checked as the workspace has them.
  const sh = (command: string) => fs.sh(command);
  const outsideHas = (name: string) => fs.exists(`${outside}/${name}`);

  beforeAll(async () => {
    server = await startTestServer({ argv: ['--max-upload-bytes', String(UPLOAD_LIMIT)] });
    await createWorkspace(server, WS);
    fs = new WorkspaceFs(server, WS);
    workspaceDir = await fs.root();
    outside = (await sh('mktemp -d /tmp/wharf-outside-XXXXXX')).trim();
    await sh(`printf 'outside secret' > ${outside}/secret.txt`);
    await sh(`ln -s /etc etc-link && ln -s ${outside} escape-dir && ln -s ${outside}/secret.txt escape-file && ln -s ${outside}/not-yet escape-dangling`);
  });
  afterAll(async () => {
    if (outside) await sh(`rm -rf ${outside}`).catch(() => {});
    fs?.close();
    await server?.dispose();
  });

  describe('reading and writing', () => {
    it('creates a file with 201 and an ETag that is its sha256, then replaces it with 200', async () => {
      const created = await put('notes/todo.txt', 'first');
      expect(created.status).toBe(201);
      expect(created.headers.get('etag')).toBe(sha('first'));
      expect(await created.json()).toEqual({ path: 'notes/todo.txt', etag: sha('first'), size: 5, created: true });
      expect(await sh('cat notes/todo.txt')).toBe('first');

      const got = await api('notes/todo.txt');
      expect(got.status).toBe(200);
      expect(got.headers.get('content-type')).toBe('application/octet-stream');
      expect(got.headers.get('etag')).toBe(sha('first'));
      expect(await got.text()).toBe('first');

      const replaced = await put('notes/todo.txt', 'second');
      expect(replaced.status).toBe(200);
      expect(replaced.headers.get('etag')).toBe(sha('second'));
      expect((await text('notes/todo.txt')).body).toBe('second');
    });

    it('keeps the mode of a replaced file and writes binary bytes exactly', async () => {
      await sh('printf "#!/bin/sh\\necho hi\\n" > run.sh && chmod 750 run.sh');
      expect((await put('run.sh', '#!/bin/sh\necho bye\n')).status).toBe(200);
      expect(await sh('stat -c %a run.sh && ./run.sh')).toBe('750\nbye\n');
      const bytes = randomBytes(300_000);
      expect((await put('bin/blob.dat', bytes)).status).toBe(201);
      const back = Buffer.from(await (await api('bin/blob.dat')).arrayBuffer());
      expect(back.equals(bytes)).toBe(true);
    });

    it('streams a file larger than the in-memory limit with the right ETag', async () => {
      await sh('head -c 9437184 /dev/urandom > big.bin');
      const expected = (await sh('sha256sum big.bin')).split(' ')[0];
      const res = await api('big.bin');
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toBe(`"${expected}"`);
      expect(res.headers.get('content-length')).toBe('9437184');
      const body = Buffer.from(await res.arrayBuffer());
      expect(createHash('sha256').update(body).digest('hex')).toBe(expected);
    });

    it('frees the agent\'s file handle when a client abandons a download', async () => {
      await sh('mkdir -p abandon && head -c 20971520 /dev/urandom > abandon/big.bin');
      // The agent's open files, seen from the workspace: the agent runs each command's shell itself,
      // so the shell's parent is the agent.
      const handlesOnBigFile = async () => (await sh('ls -l /proc/$PPID/fd/ 2>/dev/null; true')).split('\n').filter((l) => l.endsWith('/abandon/big.bin')).length;
      for (const url of ['abandon/big.bin', 'abandon?format=tar']) {
        const controller = new AbortController();
        const res = await api(url, { signal: controller.signal });
        expect(res.status).toBe(200);
        await res.body!.getReader().read();
        expect(await handlesOnBigFile(), url).toBe(1);
        controller.abort();
        const deadline = Date.now() + 20_000;
        while ((await handlesOnBigFile()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(await handlesOnBigFile(), url).toBe(0);
      }
    });

    it('lists a folder as JSON entries, the root included', async () => {
      await put('listing/b.txt', 'bb');
      await api('listing/a-dir?op=mkdir', { method: 'POST' });
      await sh('ln -s b.txt listing/link');
      const res = await api('listing');
      expect(res.status).toBe(200);
      const { entries, path } = (await res.json()) as { path: string; entries: Array<{ name: string; type: string; size: number; mode: number; mtime: string }> };
      expect(path).toBe('listing');
      expect(entries.map((e) => [e.name, e.type])).toEqual([
        ['a-dir', 'directory'],
        ['b.txt', 'file'],
        ['link', 'symlink'],
      ]);
      const file = entries.find((e) => e.name === 'b.txt');
      expect(file).toMatchObject({ size: 2, mode: 0o644 });
      expect(Date.now() - Date.parse(file!.mtime)).toBeLessThan(60_000);

      for (const rootUrl of [`/api/workspaces/${WS}/files`, `/api/workspaces/${WS}/files/`]) {
        const root = await server.api(rootUrl);
        expect(root.status).toBe(200);
        const names = ((await root.json()) as { entries: Array<{ name: string }> }).entries.map((e) => e.name);
        expect(names).toEqual(expect.arrayContaining(['listing', 'etc-link']));
      }
    });

    it('answers a revalidation with 304', async () => {
      await put('cache.txt', 'cached');
      const res = await api('cache.txt', { headers: { 'if-none-match': sha('cached') } });
      expect(res.status).toBe(304);
      expect(res.headers.get('etag')).toBe(sha('cached'));
      expect((await api('cache.txt', { headers: { 'if-none-match': sha('other') } })).status).toBe(200);
    });
  });

  describe('If-Match', () => {
    it('refuses a stale write with 412 and keeps the newer content', async () => {
      const first = await put('shared.txt', 'v1');
      const etagV1 = first.headers.get('etag')!;
      // Someone else writes in between (here: a shell in the workspace).
      await sh('printf v2-from-terminal > shared.txt');
      const stale = await put('shared.txt', 'v1-edited', { 'if-match': etagV1 });
      expect(stale.status).toBe(412);
      const error = ((await stale.json()) as { error: { code: string; message: string; details: { etag: string } } }).error;
      expect(error.code).toBe('precondition_failed');
      expect(error.message).toMatch(/has changed/);
      expect(error.details.etag).toBe(sha('v2-from-terminal'));
      expect((await text('shared.txt')).body).toBe('v2-from-terminal');

      const fresh = await put('shared.txt', 'v3', { 'if-match': sha('v2-from-terminal') });
      expect(fresh.status).toBe(200);
      expect((await text('shared.txt')).body).toBe('v3');
      expect((await put('shared.txt', 'v4', { 'if-match': `W/${sha('v3')}` })).status).toBe(412);
      expect((await put('shared.txt', 'v4', { 'if-match': `"nope", ${sha('v3')}` })).status).toBe(200);
    });

    it('refuses If-Match on a missing file and If-None-Match: * on an existing one', async () => {
      expect((await put('never-was.txt', 'x', { 'if-match': '*' })).status).toBe(412);
      expect((await api('never-was.txt')).status).toBe(404);
      expect((await put('create-only.txt', 'one', { 'if-none-match': '*' })).status).toBe(201);
      expect((await put('create-only.txt', 'two', { 'if-none-match': '*' })).status).toBe(412);
      expect((await text('create-only.txt')).body).toBe('one');
    });
  });

  describe('delete, mkdir, rename', () => {
    it('deletes a file and a folder with everything in it', async () => {
      await put('trash/a/b/c.txt', 'c');
      await put('trash/top.txt', 't');
      expect((await api('trash/top.txt', { method: 'DELETE' })).status).toBe(204);
      expect((await api('trash/top.txt')).status).toBe(404);
      expect((await api('trash', { method: 'DELETE' })).status).toBe(204);
      expect(await sh('test -e trash && echo present || echo gone')).toBe('gone\n');
      expect((await api('trash', { method: 'DELETE' })).status).toBe(404);
      const root = await server.api(`/api/workspaces/${WS}/files/`, { method: 'DELETE' });
      expect(root.status).toBe(400);
      expect(await sh(`test -d ${workspaceDir} && echo present`)).toBe('present\n');
    });

    it('makes folders recursively and will not pass through a file', async () => {
      const made = await api('deep/er/still?op=mkdir', { method: 'POST' });
      expect(made.status).toBe(201);
      expect(await made.json()).toEqual({ path: 'deep/er/still', created: true });
      expect((await api('deep/er/still?op=mkdir', { method: 'POST' })).status).toBe(200);
      await put('plain.txt', 'p');
      const through = await api('plain.txt/sub?op=mkdir', { method: 'POST' });
      expect(through.status).toBe(409);
      expect((await api('x?op=explode', { method: 'POST' })).status).toBe(400);
    });

    it('renames files and folders, refusing to clobber unless asked', async () => {
      await put('ren/a.txt', 'A');
      await put('ren/b.txt', 'B');
      const rename = (from: string, body: unknown) => api(`${from}?op=rename`, { method: 'POST', json: body });
      const moved = await rename('ren/a.txt', { to: 'ren/moved/a2.txt' });
      expect(moved.status).toBe(200);
      expect(await moved.json()).toEqual({ from: 'ren/a.txt', to: 'ren/moved/a2.txt', type: 'file' });
      expect((await api('ren/a.txt')).status).toBe(404);
      expect((await text('ren/moved/a2.txt')).body).toBe('A');

      const clash = await rename('ren/moved/a2.txt', { to: 'ren/b.txt' });
      expect(clash.status).toBe(409);
      expect((await text('ren/b.txt')).body).toBe('B');
      expect((await rename('ren/moved/a2.txt', { to: 'ren/b.txt', overwrite: true })).status).toBe(200);
      expect((await text('ren/b.txt')).body).toBe('A');

      expect((await rename('ren', { to: 'ren-folder' })).status).toBe(200);
      expect((await text('ren-folder/b.txt')).body).toBe('A');
      expect((await rename('ren-folder', { to: 'ren-folder/inside' })).status).toBe(400);
      expect((await rename('missing.txt', { to: 'x.txt' })).status).toBe(404);
      for (const to of ['../out.txt', '/abs.txt', 'a/./b', 'a\\b', 'nul\0.txt', 42]) {
        const bad = await rename('ren-folder/b.txt', { to });
        expect(bad.status, String(to)).toBe(400);
      }
      expect((await api('ren-folder/b.txt?op=rename', { method: 'POST', body: 'not json', headers: { 'content-type': 'application/json' } })).status).toBe(400);
      expect((await text('ren-folder/b.txt')).body).toBe('A');
    });
  });

  describe('refusals', () => {
    const badPaths: Array<[string, RegExp]> = [
      ['../../../etc/passwd', /"\.\." segments/],
      ['a/../../etc/passwd', /"\.\." segments/],
      ['%2e%2e/%2e%2e/etc/passwd', /"\.\." segments/],
      ['%2E%2E%2Fetc%2Fpasswd', /encoded "\/"/],
      ['.%2e/secret', /"\.\." segments/],
      ['./notes', /"\." segments/],
      ['%2Fetc%2Fpasswd', /absolute/],
      ['/etc/passwd', /absolute/],
      ['notes/todo.txt%00.png', /NUL/],
      ['a%5C..%5Cb', /backslash/],
      // Node's HTTP layer refuses a raw backslash itself (400, empty body) before any route runs.
      ['a\\b', /.*/],
      ['a//b', /empty segments/],
      ['%zz', /percent-encoding/],
    ];
    for (const [path, message] of badPaths) {
      it(`refuses ${JSON.stringify(path)} with 400`, async () => {
        for (const method of ['GET', 'PUT', 'DELETE']) {
          const res = await raw(server, method, `/api/workspaces/${WS}/files/${path}`, { body: method === 'PUT' ? 'planted' : undefined });
          expect(res.status, `${method} ${path}`).toBe(400);
          if (res.body.length > 0 || path !== 'a\\b') expect(res.json().error.message).toMatch(message);
        }
      });
    }

    it('reads the path of an absolute-form request target (as proxies send it) the same way', async () => {
      await put('proxied.txt', 'via proxy');
      const okRes = await raw(server, 'GET', `${server.url}/api/workspaces/${WS}/files/proxied.txt`);
      expect(okRes.status).toBe(200);
      expect(okRes.body.toString()).toBe('via proxy');
      const bad = await raw(server, 'GET', `${server.url}/api/workspaces/${WS}/files/%2e%2e/%2e%2e/etc/passwd`);
      expect(bad.status).toBe(400);
      expect(bad.json().error.message).toMatch(/"\.\." segments/);
    });

    it('never lets a normalised ".." reach another route', async () => {
      const res = await raw(server, 'POST', `/api/workspaces/${WS}/files/../stop`);
      expect(res.status).toBe(400);
      expect((await server.api(`/api/workspaces/${WS}`).then((r) => r.json())).status).toBe('running');
    });

    it('refuses a symlink to /etc with 403, for reading and listing', async () => {
      const read = await api('etc-link/passwd');
      expect(read.status).toBe(403);
      const body = (await read.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('forbidden');
      expect(body.error.message).toMatch(/outside the workspace/);
      expect((await api('etc-link')).status).toBe(403);
      expect((await api('etc-link?format=tar')).status).toBe(403);
    });

    it('refuses writes, deletes and renames through a symlinked folder that escapes', async () => {
      expect((await put('escape-dir/planted.txt', 'x')).status).toBe(403);
      expect((await put('escape-file', 'overwritten')).status).toBe(403);
      expect((await put('escape-dangling', 'created')).status).toBe(403);
      expect((await api('escape-dir/secret.txt', { method: 'DELETE' })).status).toBe(403);
      expect((await api('escape-dir/new?op=mkdir', { method: 'POST' })).status).toBe(403);
      expect((await api('escape-dir/secret.txt?op=rename', { method: 'POST', json: { to: 'stolen.txt' } })).status).toBe(403);
      expect((await put('movable.txt', 'mine')).status).toBe(201);
      expect((await api('movable.txt?op=rename', { method: 'POST', json: { to: 'escape-dir/todo.txt' } })).status).toBe(403);
      expect(await outsideHas('planted.txt')).toBe(false);
      expect(await outsideHas('not-yet')).toBe(false);
      expect(await outsideHas('todo.txt')).toBe(false);
      expect(await sh(`cat ${outside}/secret.txt`)).toBe('outside secret');
    });

    it('deletes an escaping symlink itself without touching its target', async () => {
      await sh(`ln -s ${outside} doomed-link`);
      expect((await api('doomed-link', { method: 'DELETE' })).status).toBe(204);
      expect(await sh(`cat ${outside}/secret.txt`)).toBe('outside secret');
    });

    it('follows a symlink that stays inside, for reads and writes', async () => {
      await put('real/data.txt', 'real data');
      await sh('ln -s real inner-dir && ln -s real/data.txt inner-file');
      expect((await text('inner-dir/data.txt')).body).toBe('real data');
      const listing = (await (await api('inner-dir')).json()) as { entries: Array<{ name: string }> };
      expect(listing.entries.map((e) => e.name)).toEqual(['data.txt']);
      // Saving through the link writes the file it names and leaves the link in place.
      expect((await put('inner-file', 'saved via link')).status).toBe(200);
      expect(await sh('cat real/data.txt; test -L inner-file && echo " still a link"')).toBe('saved via link still a link\n');
    });

    it('answers 404 for a missing file, folder or workspace', async () => {
      expect((await api('no/such/file.txt')).status).toBe(404);
      expect((await api('no/such/dir?format=tar')).status).toBe(404);
      expect((await api('nothing-here.txt', { method: 'DELETE' })).status).toBe(404);
      const unknown = await server.api('/api/workspaces/no-such-ws/files/a.txt');
      expect(unknown.status).toBe(404);
      expect((await put('a-folder/inside.txt', 'x')).status).toBe(201);
      expect((await put('a-folder', 'a file over a folder')).status).toBe(409);
    });

    it('needs credentials', async () => {
      const res = await fetch(`${server.url}${files('notes/todo.txt')}`);
      expect(res.status).toBe(401);
      const raw401 = await raw(server, 'GET', `/api/workspaces/${WS}/files/../../etc/passwd`, { headers: { authorization: 'Bearer wrong' } });
      expect(raw401.status).toBe(401);
    });

    it('keeps the old content when a client gives up half-way through an upload', async () => {
      await put('interrupted.txt', 'the original');
      const url = new URL(server.url);
      const req = request({ host: url.hostname, port: url.port, method: 'PUT', path: files('interrupted.txt'), headers: { authorization: `Bearer ${server.token}`, 'content-length': String(1024 * 1024) } });
      req.on('error', () => {});
      req.write(Buffer.alloc(256 * 1024, 120));
      // The upload is under way, into a temporary file beside the real one.
      const started = Date.now() + 20_000;
      while ((await sh('ls -a | grep -c wharf-upload || true')) !== '1\n' && Date.now() < started) await new Promise((r) => setTimeout(r, 50));
      expect(await sh('ls -a | grep -c wharf-upload || true')).toBe('1\n');
      req.destroy();
      const deadline = Date.now() + 20_000;
      while ((await sh('ls -a | grep -c wharf-upload || true')) !== '0\n' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await sh('ls -a | grep -c wharf-upload || true')).toBe('0\n');
      expect((await text('interrupted.txt')).body).toBe('the original');
    });

    it('refuses a body over the limit with 413 and keeps the old content', async () => {
      await put('limited.txt', 'small and precious');
      const big = randomBytes(UPLOAD_LIMIT + 1);
      const declared = await put('limited.txt', big);
      expect(declared.status).toBe(413);
      // Without a declared length the limit is enforced while streaming.
      const streamed = await fetch(`${server.url}${files('limited.txt')}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${server.token}` },
        body: Readable.toWeb(Readable.from([big.subarray(0, UPLOAD_LIMIT), big.subarray(UPLOAD_LIMIT)])) as ReadableStream,
        duplex: 'half',
      } as RequestInit).catch((err: Error) => err);
      if (!(streamed instanceof Error)) expect(streamed.status).toBe(413);
      expect((await text('limited.txt')).body).toBe('small and precious');
      expect(await sh('ls -a | grep -c wharf-upload || true')).toBe('0\n');
    });
  });

  describe('tar', () => {
    it('round-trips a folder: download as tar, upload into another folder', async () => {
      const blob = randomBytes(100_000);
      await put('proj/src/main.js', 'console.log(1)\n');
      await put('proj/bin/blob', blob);
      await api('proj/empty?op=mkdir', { method: 'POST' });
      await sh('ln -s src/main.js proj/entry.js && chmod 755 proj/bin/blob');

      const res = await api('proj?format=tar');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-tar');
      expect(res.headers.get('content-disposition')).toMatch(/proj\.tar/);
      const archive = Buffer.from(await res.arrayBuffer());
      const entries = await untar(archive);
      expect([...entries.keys()].sort()).toEqual(['bin/', 'bin/blob', 'empty/', 'entry.js', 'src/', 'src/main.js']);
      expect(entries.get('bin/blob')!.body.equals(blob)).toBe(true);
      expect(entries.get('bin/blob')!.mode).toBe(0o755);
      expect(entries.get('entry.js')).toMatchObject({ type: 'symlink', linkname: 'src/main.js' });

      // The same archive is readable by GNU tar.
      const listed = spawnSync('tar', ['-tf', '-'], { input: archive });
      expect(listed.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['bin/', 'bin/blob', 'empty/', 'entry.js', 'src/', 'src/main.js']);

      const up = await put('copy?format=tar', archive);
      expect(up.status).toBe(200);
      expect(await up.json()).toEqual({ path: 'copy', files: 2, directories: 3, symlinks: 1, skipped: [] });
      expect(Buffer.from(await (await api('copy/bin/blob')).arrayBuffer()).equals(blob)).toBe(true);
      expect((await text('copy/entry.js')).body).toBe('console.log(1)\n');
      expect(await sh('stat -c %a copy/bin/blob; test -d copy/empty && echo dir; readlink copy/entry.js')).toBe('755\ndir\nsrc/main.js\n');
    });

    it('extracts a tar made by GNU tar, replacing files that are there', async () => {
      const src = await mkdtemp(join(tmpdir(), 'wharf-tar-src-'));
      await mkdir(join(src, 'pkg', 'lib'), { recursive: true });
      await writeFile(join(src, 'pkg', 'lib', 'index.js'), 'export default 42;\n');
      await writeFile(join(src, 'pkg', 'README'), 'read me\n');
      const made = spawnSync('tar', ['-cf', '-', '-C', src, '.']);
      await rm(src, { recursive: true, force: true });
      await put('gnu/pkg/README', 'old readme');
      const up = await put('gnu?format=tar', made.stdout);
      expect(up.status).toBe(200);
      expect((await text('gnu/pkg/lib/index.js')).body).toBe('export default 42;\n');
      expect((await text('gnu/pkg/README')).body).toBe('read me\n');
    });

    it('refuses entries that climb out, are absolute, or pass through a link, and skips hard links', async () => {
      const climbing = await put('t1?format=tar', await tarOf([{ name: 'ok.txt', body: 'fine' }, { name: '../evil.txt', body: 'evil' }]));
      expect(climbing.status).toBe(400);
      expect((await climbing.json()).error.message).toMatch(/\.\.\/evil\.txt.*"\.\." segments/);
      expect(await sh('test -e evil.txt && echo present || echo absent')).toBe('absent\n');

      const absolute = await put('t2?format=tar', await tarOf([{ name: '/tmp/wharf-abs.txt', body: 'abs' }]));
      expect(absolute.status).toBe(400);
      expect(await fs.exists('/tmp/wharf-abs.txt')).toBe(false);

      // A relative link that leads out of the workspace may be created, but nothing goes through it.
      const relativeOut = relative(join(workspaceDir, 't3'), outside);
      const viaLink = await put('t3?format=tar', await tarOf([{ name: 'out', type: 'symlink', linkname: relativeOut }, { name: 'out/planted.txt', body: 'x' }]));
      expect(viaLink.status).toBe(403);
      expect((await viaLink.json()).error.message).toMatch(/outside the workspace/);
      expect(await sh('readlink t3/out')).toBe(`${relativeOut}\n`);
      // An absolute link target means the workspace's own view (its / is the workspace root), so it lands nowhere outside.
      const absoluteLink = await put('t3b?format=tar', await tarOf([{ name: 'out', type: 'symlink', linkname: outside }, { name: 'out/planted.txt', body: 'x' }]));
      expect(absoluteLink.status).toBe(409);
      expect(await outsideHas('planted.txt')).toBe(false);

      const upward = await put('t4/inner?format=tar', await tarOf([{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'up/sibling.txt', body: 'x' }]));
      expect(upward.status).toBe(400);
      expect((await upward.json()).error.message).toMatch(/outside "t4\/inner"/);
      expect((await api('t4/sibling.txt')).status).toBe(404);

      const hard = await put('t5?format=tar', await tarOf([{ name: 'a.txt', body: 'a' }, { name: 'b.txt', type: 'link', linkname: 'a.txt' }]));
      expect(hard.status).toBe(200);
      expect(await hard.json()).toMatchObject({ files: 1, skipped: [{ name: 'b.txt', type: 'link' }] });
    });

    it('keeps permission bits only: setuid, setgid and sticky bits of an archive are dropped', async () => {
      const up = await put('modes?format=tar', await tarOf([
        { name: 'tool', body: '#!/bin/sh\necho hi\n', mode: 0o6755 },
        { name: 'shared', type: 'directory', mode: 0o3777 },
        { name: 'plain.sh', body: 'echo plain\n', mode: 0o750 },
      ]));
      expect(up.status).toBe(200);
      const [tool, shared, plain] = (await sh('stat -c "%a" modes/tool modes/shared modes/plain.sh')).trim().split('\n');
      expect(tool).toBe('755');
      expect(Number.parseInt(shared, 8) & 0o7000, 'no setgid or sticky bit on the folder').toBe(0);
      expect(plain).toBe('750');
    });

    it('refuses garbage and oversized archives', async () => {
      const garbage = await put('t6?format=tar', randomBytes(4096));
      expect(garbage.status).toBe(400);
      expect((await garbage.json()).error.message).toMatch(/not a valid tar archive/);
      const oversized = await put('t7?format=tar', randomBytes(UPLOAD_LIMIT + 512));
      expect(oversized.status).toBe(413);
      expect((await put('t8/file.txt', 'x')).status).toBe(201);
      expect((await api('t8?format=zip')).status).toBe(400);
      expect((await api('t8/file.txt?format=tar')).status).toBe(400);
    });
  });
});
