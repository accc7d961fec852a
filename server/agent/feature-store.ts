import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../common/index.ts';

/**
 * Feature data of the workspace (deploy history, share links...), kept by its agent in the
 * workspace's own state directory so it lives and dies with the workspace on every driver.
 * One JSON file per key, `{ version, value }`; a write names the version it was computed from
 * and is refused when the key has moved on since (compare-and-swap), so two control-server
 * replicas doing read-modify-write on one key never lose an update: the loser reads again.
 */
export type FeatureStore = {
  read(key: string): Promise<Result<StoredEntry, StoreFailure>>;
  write(key: string, value: unknown, expectVersion: number): Promise<Result<{ version: number }, StoreFailure>>;
  /** Takes keys the store does not have yet from a JSON object file (data of an older layout). */
  importMissing(file: string): Promise<string[]>;
};

/** `version` 0 with no value: the key was never written. */
export type StoredEntry = { version: number; value?: unknown };

export type StoreFailure = { code: 'bad_request' | 'conflict' | 'too_large'; message: string; version?: number };

export type FeatureStoreOptions = {
  dir: string;
  /** Largest JSON text of one key's value. */
  maxValueBytes: number;
  log?: (event: string, fields?: Record<string, unknown>) => void;
};

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

export function createFeatureStore(options: FeatureStoreOptions): FeatureStore {
  const locks = new Map<string, Promise<unknown>>();
  const fileOf = (key: string) => join(options.dir, `${key}.json`);

  /** One read-modify-write at a time per key inside this agent: the CAS check and the rename are one step. */
  function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (locks.get(key) ?? Promise.resolve()).catch(() => {}).then(fn);
    locks.set(key, next);
    next.finally(() => {
      if (locks.get(key) === next) locks.delete(key);
    }).catch(() => {});
    return next;
  }

  async function load(key: string): Promise<StoredEntry> {
    let text: string;
    try {
      text = await readFile(fileOf(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 0 };
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as StoredEntry;
      if (Number.isSafeInteger(parsed.version) && parsed.version > 0) return { version: parsed.version, value: parsed.value };
    } catch {
      /* below */
    }
    // The folder is the workspace's own: a process in it may have broken the file. It reads as
    // never written (fail closed: a share link whose record is gone is refused), and the next write replaces it.
    options.log?.('store.corrupt', { key });
    return { version: 0 };
  }

  /** Whole file or nothing, even across a crash: write aside, flush, rename over. */
  async function save(key: string, entry: StoredEntry): Promise<void> {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    const tmp = `${fileOf(key)}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(entry));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, fileOf(key)).catch(async (err: unknown) => {
      await rm(tmp, { force: true });
      throw err;
    });
  }

  const badKey = (key: unknown) => fail<StoreFailure>({ code: 'bad_request', message: `"${String(key)}" is not a store key (1-100 of A-Z, a-z, 0-9, "_", "-")` });

  return {
    async read(key) {
      if (typeof key !== 'string' || !KEY_PATTERN.test(key)) return badKey(key);
      return ok(await load(key));
    },

    write(key, value, expectVersion) {
      if (typeof key !== 'string' || !KEY_PATTERN.test(key)) return Promise.resolve(badKey(key));
      const text = JSON.stringify(value ?? null);
      if (Buffer.byteLength(text) > options.maxValueBytes) {
        return Promise.resolve(fail({ code: 'too_large' as const, message: `the value of "${key}" is ${Buffer.byteLength(text)} bytes; the store keeps at most ${options.maxValueBytes} per key` }));
      }
      return withLock(key, async () => {
        const current = await load(key);
        if (current.version !== expectVersion) {
          return fail({ code: 'conflict' as const, message: `"${key}" is at version ${current.version}, not ${expectVersion}`, version: current.version });
        }
        const version = current.version + 1;
        await save(key, { version, value: JSON.parse(text) as unknown });
        return ok({ version });
      });
    },

    async importMissing(file) {
      let legacy: Record<string, unknown>;
      try {
        legacy = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      } catch {
        return [];
      }
      const imported: string[] = [];
      for (const [key, value] of Object.entries(legacy ?? {})) {
        if (!KEY_PATTERN.test(key)) continue;
        // Written already (an earlier start imported it, then it changed): the store's copy wins.
        const written = await withLock(key, async () => {
          if ((await load(key)).version !== 0) return false;
          await save(key, { version: 1, value });
          return true;
        });
        if (written) imported.push(key);
      }
      return imported;
    },
  };
}
