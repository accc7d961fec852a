import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WharfError } from '../../common/index.ts';
import type { RouteModule } from '../app-types.ts';

const codeRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUNDLE = join(codeRoot, 'dist', 'wharf.cjs');
const BUILD_SCRIPT = join(codeRoot, 'scripts', 'build-cli.mjs');

async function newestSourceMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestSourceMtime(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, (await stat(path)).mtimeMs);
  }
  return newest;
}

function runBuild(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUILD_SCRIPT], { cwd: codeRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', (err) => reject(new WharfError('unavailable', `cannot build the wharf helper: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new WharfError('unavailable', `cannot build the wharf helper: ${stderr.trim().split('\n').slice(-3).join(' ') || `exit ${code}`}`));
    });
  });
}

/**
 * `GET /api/downloads/wharf.js`: the helper as one CommonJS file (needs Node 20). Built on the
 * first request when missing or older than the sources, then served from `dist/`.
 */
export const registerDownloadRoutes: RouteModule = (app) => {
  let ready: Promise<{ body: Buffer; etag: string }> | undefined;

  async function prepare(): Promise<{ body: Buffer; etag: string }> {
    const built = existsSync(BUNDLE) ? (await stat(BUNDLE)).mtimeMs : 0;
    if (existsSync(BUILD_SCRIPT) && built < (await newestSourceMtime(join(codeRoot, 'server')))) await runBuild();
    else if (!built) throw new WharfError('unavailable', 'the wharf helper bundle is not built and scripts/build-cli.mjs is missing');
    const body = await readFile(BUNDLE);
    return { body, etag: `"${createHash('sha256').update(body).digest('hex')}"` };
  }

  app.get('/api/downloads/wharf.js', async (c) => {
    // One build at a time; a failed build is retried by the next request.
    ready ??= prepare().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    const { body, etag } = await ready;
    c.header('ETag', etag);
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    c.header('Content-Type', 'application/javascript; charset=utf-8');
    c.header('Content-Disposition', 'attachment; filename="wharf.js"');
    return c.body(new Uint8Array(body));
  });
};
