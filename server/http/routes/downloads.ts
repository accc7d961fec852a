import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../../common/index.ts';
import type { RouteModule } from '../app-types.ts';

/** The helper as one CommonJS file, as `npm run build` (scripts/build-cli.mjs) leaves it in the artifacts folder. */
const HELPER_FILE = 'wharf.cjs';

type Loaded = { mtimeMs: number; size: number; body: Buffer; etag: string };

/**
 * `GET /api/downloads/wharf.js`: the helper (needs Node 20), served from the artifacts folder
 * (`--artifacts-dir`). The server only hands out what was built: it never builds in a request
 * (a build is seconds of CPU that any signed-in client could ask for again and again), and a
 * missing file is a 503 that says to run `npm run build`.
 */
export const registerDownloadRoutes: RouteModule = (app, _ws, deps) => {
  const file = join(deps.artifactsDir, HELPER_FILE);
  let loaded: Loaded | undefined;

  /** The file, read again only when a build has replaced it (the build renames a new file into place). */
  async function load(): Promise<Loaded> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      throw new WharfError('unavailable', `the wharf helper is not built (no ${file}); run "npm run build" on the server`);
    }
    if (loaded?.mtimeMs === info.mtimeMs && loaded.size === info.size) return loaded;
    const body = await readFile(file);
    loaded = { mtimeMs: info.mtimeMs, size: info.size, body, etag: `"${createHash('sha256').update(body).digest('hex')}"` };
    return loaded;
  }

  app.get('/api/downloads/wharf.js', async (c) => {
    const { body, etag } = await load();
    c.header('ETag', etag);
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    c.header('Content-Type', 'application/javascript; charset=utf-8');
    c.header('Content-Disposition', 'attachment; filename="wharf.js"');
    return c.body(new Uint8Array(body));
  });
};
