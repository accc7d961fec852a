import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';

/**
 * A browser that cancels a folder download (a click on "cancel", a closed tab) must give back
 * everything the download held in the workspace: the agent allows 512 open files per
 * connection, and leaked ones used to make the workspace answer 503 after about 500 aborts.
 */
const ABORTS = 1000;

/** Starts a download and drops the connection as soon as `when` says so. */
function abortedDownload(server: TestServer, path: string, when: 'sent' | 'headers' | 'first-bytes'): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${server.url}${path}`);
    const req = request(url, { headers: { authorization: `Bearer ${server.token}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`download answered ${res.statusCode}`));
      if (when === 'headers') return req.destroy();
      res.once('data', () => req.destroy());
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end();
    if (when === 'sent') setTimeout(() => req.destroy(), 1);
  });
}

/** Open file descriptors of a process (the agent's SFTP handles are among them). */
function openFilesOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe('aborted tar downloads', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    await createWorkspace(server, 'aborts');
    // Several files larger than one read, so a download is cut in the middle of a file.
    for (const name of ['a.bin', 'b.bin', 'sub/c.bin']) {
      const res = await server.api(`/api/workspaces/aborts/files/big/${name}`, { method: 'PUT', body: Buffer.alloc(3 * 1024 * 1024, name) });
      expect(res.status).toBeLessThan(300);
    }
    // And many small ones, so a download is cut between two files as often as inside one.
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => server.api(`/api/workspaces/aborts/files/big/many/f${i + j}.txt`, { method: 'PUT', body: `file ${i + j}\n`.repeat(500) })));
    }
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it(`gives back every file handle after ${ABORTS} cancelled downloads, and the workspace keeps working`, async () => {
    const pid0 = JSON.parse(readFileSync(join(server.dataDir, 'workspaces', 'aborts', 'workspace.json'), 'utf8')).agentPid as number;
    const baselineFds = openFilesOf(pid0);
    const modes = ['sent', 'headers', 'first-bytes'] as const;
    // In batches, as several tabs would: aborts that overlap must not leak either.
    for (let i = 0; i < ABORTS; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => abortedDownload(server, '/api/workspaces/aborts/files/big?format=tar', modes[(i + j) % 3])));
    }
    // The agent's open files come back to what they were: nothing is held for the aborted ones.
    const deadline = Date.now() + 60_000;
    let open = openFilesOf(pid0);
    while (open > baselineFds + 5 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      open = openFilesOf(pid0);
    }
    expect(open, `the agent holds ${open - baselineFds} more open files than before the aborts`).toBeLessThanOrEqual(baselineFds + 5);
    const listing = await server.api('/api/workspaces/aborts/files/big');
    expect(listing.status).toBe(200);
    const whole = await server.api('/api/workspaces/aborts/files/big?format=tar');
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBeGreaterThan(9 * 1024 * 1024);
    const file = await server.api('/api/workspaces/aborts/files/big/a.bin');
    expect(file.status).toBe(200);
    expect((await file.arrayBuffer()).byteLength).toBe(3 * 1024 * 1024);
  }, 300_000);
});
