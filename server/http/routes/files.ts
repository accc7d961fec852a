import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Context } from 'hono';
import { WharfError } from '../../common/index.ts';
import { createFilesService, parseWorkspacePath, type FileError, type WorkspacePath } from '../../files/index.ts';
import type { AppEnv, RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';

const FILES_URL = /^\/api\/workspaces\/([^/]+)\/files(?:\/(.*))?$/;

/**
 * The request target exactly as the client sent it. URL parsing folds `..`, `%2e%2e` and `\`
 * away before routing, which would hide exactly what must be refused, so the files API reads
 * the raw target from Node's request when it has one.
 */
function rawPathOf(c: Context<AppEnv>): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  // An absolute-form target (`GET http://host/path`, sent through proxies) carries the same path.
  const target = (incoming?.url ?? new URL(c.req.url).pathname).replace(/^https?:\/\/[^/]*/i, '');
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}

function hasDotSegmentOrBackslash(rawPath: string): string | undefined {
  if (rawPath.includes('\\') || /%5c/i.test(rawPath)) return 'path must not contain backslashes';
  for (const segment of rawPath.split('/')) {
    const folded = segment.replace(/%2e/gi, '.');
    if (folded === '..') return 'path must not contain ".." segments';
    if (folded === '.') return 'path must not contain "." segments';
  }
  return undefined;
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; error: FileError }): T {
  if (!result.ok) throw new WharfError(result.error.code, result.error.message, result.error.details);
  return result.value;
}

function requestBody(c: Context<AppEnv>): Readable {
  const body = c.req.raw.body;
  return body ? Readable.fromWeb(body as unknown as WebReadableStream<Uint8Array>) : Readable.from([]);
}

function toWebStream(stream: Readable): ReadableStream<Uint8Array> {
  // A client that goes away makes the adapter destroy the stream with an AbortError; the
  // stream's own cleanup frees the agent's handle, and an unheard 'error' would kill the server.
  stream.on('error', () => {});
  return Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>;
}

/** `Content-Disposition` filename: ASCII fallback plus the exact name (RFC 6266). */
function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Workspace files: `GET|PUT|DELETE|POST /api/workspaces/:id/files/<path>`. Everything goes through
 * the agent's SFTP server; the route only checks the path and speaks HTTP.
 */
export const registerFileRoutes: RouteModule = (app, _ws, deps) => {
  const files = createFilesService({
    openSftp: async (id) => (await deps.workspaces.agent(id)).sftp(),
    limits: { maxUploadBytes: deps.maxUploadBytes, maxBufferedReadBytes: deps.maxBufferedReadBytes },
  });

  // Runs before every other route: a files URL with `..` must be refused, not normalised into
  // some other path (possibly another route) and served.
  app.use('*', async (c, next) => {
    const raw = rawPathOf(c);
    if (!raw.startsWith('/api/workspaces/')) return next();
    const segments = raw.split('/');
    const looksLikeFiles = segments[4] === 'files' || FILES_URL.test(c.req.path);
    const problem = looksLikeFiles ? hasDotSegmentOrBackslash(raw) : undefined;
    if (problem) throw new WharfError('bad_request', problem);
    return next();
  });

  function target(c: Context<AppEnv>): { id: string; path: WorkspacePath; display: string } {
    const match = FILES_URL.exec(rawPathOf(c));
    if (!match) throw new WharfError('bad_request', 'malformed files URL');
    const parsed = parseWorkspacePath(match[2] ?? '', { encoded: true });
    if (!parsed.ok) throw new WharfError('bad_request', parsed.error.message);
    return { id: c.req.param('id') as string, path: parsed.value, display: parsed.value === '' ? '/' : parsed.value };
  }

  function checkDeclaredLength(c: Context<AppEnv>): void {
    const declared = Number(c.req.header('content-length'));
    if (Number.isFinite(declared) && declared > deps.maxUploadBytes) {
      throw new WharfError('payload_too_large', `the body of ${declared} bytes is larger than the limit of ${deps.maxUploadBytes} bytes`, { limit: deps.maxUploadBytes });
    }
  }

  async function read(c: Context<AppEnv>) {
    const { id, path, display } = target(c);
    const format = c.req.query('format');
    if (format === 'tar') {
      const stream = unwrap(await files.downloadTar(id, path));
      const name = path === '' ? id : path.slice(path.lastIndexOf('/') + 1);
      return c.body(toWebStream(stream), 200, { 'content-type': 'application/x-tar', 'content-disposition': attachment(`${name}.tar`) });
    }
    if (format !== undefined) throw new WharfError('bad_request', `unknown format "${format}" (only "tar" is supported)`);
    const result = unwrap(await files.read(id, path, { ifNoneMatch: c.req.header('if-none-match') }));
    if (result.kind === 'directory') return c.json({ path: display, entries: result.entries });
    const headers: Record<string, string> = {
      etag: result.etag,
      'last-modified': new Date(result.mtime).toUTCString(),
      // Always revalidate: the ETag makes that a cheap 304.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    if (result.notModified) return c.body(null, 304, headers);
    headers['content-type'] = 'application/octet-stream';
    if (Buffer.isBuffer(result.body)) {
      headers['content-length'] = String(result.body.length);
      return c.body(new Uint8Array(result.body.buffer as ArrayBuffer, result.body.byteOffset, result.body.length), 200, headers);
    }
    headers['content-length'] = String(result.size);
    return c.body(toWebStream(result.body), 200, headers);
  }

  async function write(c: Context<AppEnv>) {
    const { id, path, display } = target(c);
    checkDeclaredLength(c);
    const format = c.req.query('format');
    if (format === 'tar') {
      const summary = unwrap(await files.uploadTar(id, path, requestBody(c)));
      return c.json({ path: display, ...summary });
    }
    if (format !== undefined) throw new WharfError('bad_request', `unknown format "${format}" (only "tar" is supported)`);
    const written = unwrap(
      await files.write(id, path, requestBody(c), { ifMatch: c.req.header('if-match'), ifNoneMatch: c.req.header('if-none-match') }),
    );
    return c.json({ path: display, etag: written.etag, size: written.size, created: written.created }, written.created ? 201 : 200, { etag: written.etag });
  }

  async function remove(c: Context<AppEnv>) {
    const { id, path } = target(c);
    unwrap(await files.remove(id, path));
    return c.body(null, 204);
  }

  async function operate(c: Context<AppEnv>) {
    const { id, path, display } = target(c);
    const op = c.req.query('op');
    if (op === 'mkdir') {
      const { created } = unwrap(await files.mkdir(id, path));
      return c.json({ path: display, created }, created ? 201 : 200);
    }
    if (op === 'rename') {
      const body = await readJsonBody(c);
      if (typeof body.to !== 'string') throw new WharfError('bad_request', '"to" (the new path, relative to the workspace root) is required');
      if (body.overwrite !== undefined && typeof body.overwrite !== 'boolean') throw new WharfError('bad_request', '"overwrite" must be true or false');
      const to = parseWorkspacePath(body.to.replace(/\/+$/, ''), { encoded: false });
      if (!to.ok) throw new WharfError('bad_request', `"to": ${to.error.message}`);
      const { type } = unwrap(await files.rename(id, path, to.value, { overwrite: body.overwrite === true }));
      return c.json({ from: display, to: to.value, type });
    }
    throw new WharfError('bad_request', op === undefined ? '"op" is required: mkdir or rename' : `unknown op "${op}" (mkdir or rename)`);
  }

  for (const pattern of ['/api/workspaces/:id/files', '/api/workspaces/:id/files/*']) {
    app.get(pattern, read);
    app.put(pattern, write);
    app.delete(pattern, remove);
    app.post(pattern, operate);
  }
};
