import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Context } from 'hono';
import { WharfError } from '../../common/index.ts';
import type { AppEnv, RouteModule } from '../app-types.ts';

/**
 * What `npm run build` leaves in the artifacts folder for these routes (scripts/build-cli.mjs and
 * scripts/build-sea.mjs), and how each is served. `install.sh` is a template: the server writes
 * its own public URL into it, so the script fetches the helper from where it came from.
 */
const ARTIFACTS = {
  /** The helper as one CommonJS file: `GET /api/downloads/wharf.js` (signed in), as before. */
  'wharf.cjs': { type: 'application/javascript; charset=utf-8', attachment: 'wharf.js' },
  /** The helper as one ES module (Node ≥ 20). */
  'wharf.mjs': { type: 'text/javascript; charset=utf-8', attachment: 'wharf.mjs' },
  /** The helper as a Node single executable application: runs with no Node installed. */
  'wharf-linux-x64': { type: 'application/octet-stream', attachment: 'wharf-linux-x64', hint: ' (it is built only on a Linux x64 machine)' },
  'install.sh': { type: 'text/x-shellscript; charset=utf-8' },
} as const satisfies Record<string, { type: string; attachment?: string; hint?: string }>;

type ArtifactName = keyof typeof ARTIFACTS;

/** Served under /downloads/, in SHA256SUMS, under their own names. */
const PUBLIC_FILES = ['wharf.mjs', 'wharf-linux-x64', 'install.sh'] as const satisfies readonly ArtifactName[];

/**
 * The downloads anyone may fetch without credentials (server/http/app.ts exempts exactly these):
 * the helper is no secret, and `curl -fsSL <server>/downloads/install.sh | sh` has no token to send.
 */
export const PUBLIC_DOWNLOAD_PATHS: readonly string[] = [...PUBLIC_FILES.map((name) => `/downloads/${name}`), '/downloads/SHA256SUMS'];

/** Where install.sh names its server; replaced when it is served. */
const SERVER_URL_PLACEHOLDER = '@WHARF_SERVER_URL@';

/** A file's identity: a build renames a new file into place, so a new one has a new inode or mtime. */
type Identity = string;

/** One open artifact: its bytes are read from `handle`, or are `text` (a filled-in template). */
type Opened = { handle: FileHandle; size: number; sha256: string; text?: Buffer };

async function sha256Of(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  // Positional reads: the same handle is streamed from offset 0 afterwards.
  for (let position = 0; position < size; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

/**
 * The helper's downloads, all served from the artifacts folder (`--artifacts-dir`):
 *
 *   GET /api/downloads/wharf.js    wharf.cjs (needs Node 20), signed in, as it always was
 *   GET /downloads/wharf.mjs       the helper as one ES module (Node ≥ 20)
 *   GET /downloads/wharf-linux-x64 the helper as a single executable (no Node needed)
 *   GET /downloads/install.sh      picks one of those for the machine, checks it, installs it
 *   GET /downloads/SHA256SUMS      `sha256sum -c` lines of the three files above, as served
 *
 * The server only hands out what was built: it never builds in a request (a build is seconds of
 * CPU that anyone could ask for again and again), and a missing file is a 503 that says to run
 * `npm run build`. Each file is opened once per request and sent from that open file, so a build
 * renaming a new one into place mid-download never mixes two; its sha256 (ETag, SHA256SUMS) is
 * computed once per file identity (device, inode, mtime, size), not per request.
 */
export const registerDownloadRoutes: RouteModule = (app, _ws, deps) => {
  const hashes = new Map<ArtifactName, { identity: Identity; sha256: Promise<string> }>();
  const templates = new Map<ArtifactName, { identity: Identity; text: Buffer; sha256: string }>();

  const pathOf = (name: ArtifactName) => join(deps.artifactsDir, name);
  const missing = (name: ArtifactName) =>
    new WharfError('unavailable', `the wharf helper's ${name} is not built (no ${pathOf(name)}); run "npm run build" on the server${'hint' in ARTIFACTS[name] ? ARTIFACTS[name].hint : ''}`);

  /** install.sh names this server; single-quoted in the script, so a quote is written `'\''`. */
  const fillTemplate = (raw: Buffer) => Buffer.from(raw.toString('utf8').replaceAll(SERVER_URL_PLACEHOLDER, deps.site.publicUrl().replaceAll("'", "'\\''")));

  /** The artifact, opened; the caller closes `handle`. A missing file is the 503 that says to build. */
  async function openArtifact(name: ArtifactName): Promise<Opened> {
    const handle = await open(pathOf(name), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' || err.code === 'ENOTDIR' ? missing(name) : err;
    });
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw missing(name);
      const identity = `${info.dev}:${info.ino}:${info.mtimeMs}:${info.size}`;
      if (name === 'install.sh') {
        const key = `${identity}:${deps.site.publicUrl()}`;
        let template = templates.get(name);
        if (template?.identity !== key) {
          const text = fillTemplate(await handle.readFile());
          template = { identity: key, text, sha256: createHash('sha256').update(text).digest('hex') };
          templates.set(name, template);
        }
        return { handle, size: template.text.length, sha256: template.sha256, text: template.text };
      }
      let cached = hashes.get(name);
      if (cached?.identity !== identity) {
        cached = { identity, sha256: sha256Of(handle, info.size) };
        hashes.set(name, cached);
        const mine = cached;
        mine.sha256.catch(() => hashes.get(name) === mine && hashes.delete(name));
      }
      return { handle, size: info.size, sha256: await cached.sha256 };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async function serve(c: Context<AppEnv>, name: ArtifactName) {
    const opened = await openArtifact(name);
    const { handle, size, sha256, text } = opened;
    const etag = `"${sha256}"`;
    c.header('ETag', etag);
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === etag) {
      await handle.close();
      return c.body(null, 304);
    }
    const artifact = ARTIFACTS[name];
    c.header('Content-Type', artifact.type);
    if ('attachment' in artifact) c.header('Content-Disposition', `attachment; filename="${artifact.attachment}"`);
    c.header('Content-Length', String(size));
    // HEAD runs this handler too, and nothing would read (and so close) a stream.
    if (c.req.raw.method === 'HEAD') {
      await handle.close();
      return c.body(null);
    }
    if (text) {
      await handle.close();
      return c.body(new Uint8Array(text));
    }
    const stream = handle.createReadStream({ start: 0, end: Math.max(0, size - 1), autoClose: true });
    if (size === 0) {
      stream.destroy();
      return c.body(new Uint8Array());
    }
    return c.body(Readable.toWeb(stream) as ReadableStream<Uint8Array>);
  }

  app.get('/api/downloads/wharf.js', (c) => serve(c, 'wharf.cjs'));
  for (const name of PUBLIC_FILES) app.get(`/downloads/${name}`, (c) => serve(c, name));

  app.get('/downloads/SHA256SUMS', async (c) => {
    const lines: string[] = [];
    for (const name of PUBLIC_FILES) {
      let opened: Opened;
      try {
        opened = await openArtifact(name);
      } catch (err) {
        // A file that was not built is left out (the executable is made on Linux x64 only).
        if (err instanceof WharfError && err.code === 'unavailable') continue;
        throw err;
      }
      await opened.handle.close();
      lines.push(`${opened.sha256}  ${name}\n`);
    }
    if (lines.length === 0) throw new WharfError('unavailable', `the wharf helper is not built (nothing in ${deps.artifactsDir}); run "npm run build" on the server`);
    c.header('Cache-Control', 'no-cache');
    return c.text(lines.join(''), 200, { 'Content-Type': 'text/plain; charset=utf-8' });
  });
};
