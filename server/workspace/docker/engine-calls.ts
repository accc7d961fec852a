import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { WharfError } from '../../common/index.ts';
import { engineMessage, type EngineClient } from '../../engine-api/index.ts';

/** One answer of the engine, read whole. */
export type EngineReply = { status: number; text: string };

/** Engine calls the driver makes, worded as WharfErrors: the engine gone is `unavailable` for the caller. */
export type EngineCalls = ReturnType<typeof createEngineCalls>;

/** A tar entry to write into a container (`putArchive`). */
export type ArchiveEntry = { name: string; type?: 'file' | 'directory'; mode: number; uid?: number; gid?: number; body?: Buffer | string };

/** Builds a tar in memory: what goes in is small (keys, a marker) or read once (the runtime). */
export async function packEntries(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const mtime = new Date();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime } as const;
    if (e.type === 'directory') pack.entry(header);
    else pack.entry(header, e.body ?? '');
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The first file of a tar (an archive answer of one file), or undefined. */
function firstFileOf(archive: Buffer): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const extract = tar.extract();
    let found: string | undefined;
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        if (found === undefined && header.type === 'file') found = Buffer.concat(chunks).toString('utf8');
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', () => resolve(found));
    extract.on('error', reject);
    extract.end(archive);
  });
}

export function createEngineCalls(client: EngineClient, defaultTimeoutMs: number) {
  const where = client.endpoint.display;

  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD', path: string, options: { query?: Record<string, string>; json?: unknown; tar?: Buffer; timeoutMs?: number } = {}): Promise<EngineReply> {
    const answer = await client.fetchText({
      method,
      path,
      query: options.query,
      json: options.json,
      upload: options.tar ? { stream: Readable.from([options.tar]), contentType: 'application/x-tar' } : undefined,
      timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    });
    if (!answer.ok) throw new WharfError('unavailable', `the container engine at ${where} cannot be used: ${answer.error.message}`);
    return answer.value;
  }

  /** An answer that must be 2xx; anything else is the engine's refusal in its own words. */
  async function expectOk(what: string, reply: Promise<EngineReply>, accept: number[] = []): Promise<EngineReply> {
    const r = await reply;
    if ((r.status >= 200 && r.status < 300) || accept.includes(r.status)) return r;
    const message = engineMessage(r.text);
    const code = r.status === 404 ? 'not_found' : r.status === 409 ? 'conflict' : r.status === 400 ? 'bad_request' : 'unavailable';
    throw new WharfError(code, `${what}: ${message || `the engine answered ${r.status}`}`, { status: r.status });
  }

  return {
    call,
    expectOk,
    async json<T>(what: string, method: 'GET' | 'POST', path: string, options: { query?: Record<string, string>; json?: unknown; timeoutMs?: number } = {}): Promise<T> {
      const r = await expectOk(what, call(method, path, options));
      return (r.text ? JSON.parse(r.text) : {}) as T;
    },
    /** Writes files into a container, started or not (volumes mounted in it included). */
    async putArchive(container: string, path: string, entries: ArchiveEntry[] | Buffer, timeoutMs?: number): Promise<void> {
      const archive = Buffer.isBuffer(entries) ? entries : await packEntries(entries);
      await expectOk(`cannot write into container ${container}`, call('PUT', `/containers/${encodeURIComponent(container)}/archive`, { query: { path }, tar: archive, timeoutMs }));
    },
    /** One small file of a container, started or not; undefined when it is not there. */
    async readFile(container: string, path: string): Promise<string | undefined> {
      const answer = await client.send({ method: 'GET', path: `/containers/${encodeURIComponent(container)}/archive`, query: { path }, timeoutMs: defaultTimeoutMs });
      if (!answer.ok) throw new WharfError('unavailable', `the container engine at ${where} cannot be used: ${answer.error.message}`);
      const { status, body } = answer.value;
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        body.on('data', (c: Buffer) => chunks.push(c));
        body.on('end', () => resolve());
        body.on('error', reject);
      });
      if (status === 404) return undefined;
      if (status !== 200) throw new WharfError('unavailable', `cannot read ${path} of container ${container}: ${engineMessage(Buffer.concat(chunks).toString('utf8'))}`);
      return firstFileOf(Buffer.concat(chunks));
    },
    hijack: client.hijack,
  };
}
