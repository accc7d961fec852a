import { stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { fail, ok, type Result } from '../../common/index.ts';
import type { DocStateStore } from './doc-state-store.ts';
import type { CloseInstruction } from '../envelope.ts';
import type { GitignoreMatcher } from './gitignore-matcher.ts';
import { resolveWorkspacePath, type PathFailure } from './safe-path.ts';
import { openSharedDoc, type SharedDoc } from './shared-doc.ts';
import type { WatchEventType, WorkspaceWatcher } from './workspace-watcher.ts';

export type DocManagerOptions = {
  /** The workspace root, symlinks resolved. */
  root: string;
  flushDelayMs: number;
  flushMaxWaitMs: number;
  maxDocBytes: number;
  store: DocStateStore;
  matcher: GitignoreMatcher;
  /** Started on the first open: an agent nobody edits in never scans its tree. */
  startWatcher: (onEvent: (type: WatchEventType, path: string) => void) => WorkspaceWatcher;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

export type OpenFailure = PathFailure | { code: 'unavailable'; message: string };

export type DocManager = ReturnType<typeof createDocManager>;

/** The open documents of one workspace, one per file (by real path), shared by all its clients. */
export function createDocManager(options: DocManagerOptions) {
  const { root, matcher, log } = options;
  const docs = new Map<string, Promise<SharedDoc>>();
  const closing = new Map<string, Promise<void>>();
  const releaseExtraWatch = new Map<string, () => void>();
  let watcher: WorkspaceWatcher | undefined;
  let shuttingDown = false;

  function onWatchEvent(type: WatchEventType, path: string): void {
    if (type === 'unlinkDir') {
      const prefix = path + sep;
      for (const [key, entry] of docs) if (key.startsWith(prefix)) void entry.then((doc) => doc.noteDiskEvent(), () => {});
      return;
    }
    const entry = docs.get(path);
    if (entry) void entry.then((doc) => doc.noteDiskEvent(), () => {});
  }

  function ensureWatcher(): WorkspaceWatcher {
    if (!watcher) {
      watcher = options.startWatcher(onWatchEvent);
      // Changes made while the tree was still being scanned were not reported: look at every open file once.
      void watcher.ready.then(() => {
        for (const entry of docs.values()) void entry.then((doc) => doc.checkDisk(), () => {});
      });
    }
    return watcher;
  }

  function forget(doc: SharedDoc): void {
    releaseExtraWatch.get(doc.real)?.();
    releaseExtraWatch.delete(doc.real);
  }

  async function load(real: string, rel: string): Promise<SharedDoc> {
    const w = ensureWatcher();
    const doc = await openSharedDoc({
      real,
      rel,
      flushDelayMs: options.flushDelayMs,
      flushMaxWaitMs: options.flushMaxWaitMs,
      settleMs: options.flushDelayMs,
      maxDocBytes: options.maxDocBytes,
      store: options.store,
      log,
      onGone: () => {
        docs.delete(real);
        forget(doc);
      },
    });
    if (matcher.isIgnored(real, false)) releaseExtraWatch.set(real, w.watchIgnoredFile(real));
    return doc;
  }

  async function acquire(real: string, rel: string): Promise<SharedDoc> {
    for (;;) {
      const pendingClose = closing.get(real);
      if (pendingClose) {
        await pendingClose;
        continue;
      }
      let entry = docs.get(real);
      if (!entry) {
        entry = load(real, rel);
        docs.set(real, entry);
        const created = entry;
        created.catch(() => {
          if (docs.get(real) === created) docs.delete(real);
        });
      }
      const doc = await entry;
      if (!doc.closed) return doc;
      if (docs.get(real) === entry) docs.delete(real);
    }
  }

  return {
    /** Finds or loads the document of a client-supplied relative path. Attach a peer before awaiting anything else. */
    async open(path: unknown): Promise<Result<SharedDoc, OpenFailure>> {
      if (shuttingDown) return fail({ code: 'unavailable', message: 'the workspace agent is stopping' });
      const resolved = await resolveWorkspacePath(root, path);
      if (!resolved.ok) return resolved;
      const { real, rel } = resolved.value;
      try {
        const info = await stat(real);
        if (!info.isFile()) return fail({ code: 'bad_request', message: `"${rel || '.'}" is not a regular file` });
        return ok(await acquire(real, rel));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return fail({ code: 'not_found', message: `"${rel}" does not exist` });
        if (code === 'EACCES' || code === 'EPERM') return fail({ code: 'forbidden', message: `"${rel}" cannot be read` });
        throw err;
      }
    },

    /** Closes a document once its last peer left (it is saved and its CRDT state stored). */
    release(doc: SharedDoc): void {
      if (doc.peerCount > 0 || doc.closed) return;
      const entry = docs.get(doc.real);
      void entry?.then((current) => {
        if (current !== doc || doc.peerCount > 0 || doc.closed) return;
        docs.delete(doc.real);
        forget(doc);
        const done = doc.close().finally(() => {
          if (closing.get(doc.real) === done) closing.delete(doc.real);
        });
        closing.set(doc.real, done);
      });
    },

    async listIgnored(dir: unknown): Promise<Result<string[], PathFailure>> {
      const resolved = await resolveWorkspacePath(root, dir === '' || dir === undefined ? '.' : dir);
      if (!resolved.ok) return resolved;
      const info = await stat(resolved.value.real);
      if (!info.isDirectory()) return fail({ code: 'bad_request', message: `"${String(dir)}" is not a directory` });
      return ok(await matcher.listIgnored(resolved.value.real));
    },

    get openCount(): number {
      return docs.size;
    },

    /** Saves every open document, tells its clients why they are being disconnected, stops watching. */
    async shutdown(instruction: CloseInstruction): Promise<void> {
      shuttingDown = true;
      const open = await Promise.allSettled([...docs.values()]);
      docs.clear();
      await Promise.all(
        open.map((r) => (r.status === 'fulfilled' ? r.value.close(instruction).catch((err: Error) => log('doc.close_failed', { path: r.value.rel, error: err.message })) : undefined)),
      );
      await Promise.all(closing.values());
      for (const release of releaseExtraWatch.values()) release();
      releaseExtraWatch.clear();
      await watcher?.close();
    },
  };
}
