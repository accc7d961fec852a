import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../common/index.ts';

/**
 * The control servers that share a data dir (docs/replicas.md): each keeps a file in
 * `<data dir>/replicas/` while it runs. A replica on this host is alive while its pid is; one
 * on another host (a data dir on shared storage) while it keeps touching its file. A driver asks
 * before it stops agents on shutdown: the last server out stops them, the others leave them to
 * the replicas still serving them.
 */
export type ReplicaRegistry = {
  start(): Promise<void>;
  /** How many other replicas are alive now (files of dead ones on this host are removed). */
  others(): Promise<number>;
  stop(): Promise<void>;
};

type Entry = { host: string; pid: number };

export function createReplicaRegistry(options: { dataDir: string; heartbeatMs: number }): ReplicaRegistry {
  const dir = join(options.dataDir, 'replicas');
  const own = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  const host = hostname();
  let timer: NodeJS.Timeout | undefined;

  return {
    async start() {
      // Idempotent: a driver set hands one registry to each of its drivers.
      if (timer) return;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(own, JSON.stringify({ host, pid: process.pid, startedAt: new Date().toISOString() } satisfies Entry & { startedAt: string }), { mode: 0o600 });
      timer = setInterval(() => {
        const now = new Date();
        void utimes(own, now, now).catch(() => {});
      }, options.heartbeatMs);
      timer.unref();
    },
    async others() {
      let count = 0;
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const file = join(dir, name);
        if (file === own) continue;
        let entry: Entry | undefined;
        let touched = 0;
        try {
          entry = JSON.parse(await readFile(file, 'utf8')) as Entry;
          touched = (await stat(file)).mtimeMs;
        } catch {
          continue; // being written, or just removed
        }
        const alive = entry.host === host ? isProcessAlive(entry.pid) : Date.now() - touched < options.heartbeatMs * 3;
        if (alive) count++;
        else if (entry.host === host) await rm(file, { force: true });
      }
      return count;
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await rm(own, { force: true });
    },
  };
}
