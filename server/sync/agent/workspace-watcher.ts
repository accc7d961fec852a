import { basename, dirname } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import { TEMP_FILE_PATTERN } from './doc-file.ts';
import type { GitignoreMatcher } from './gitignore-matcher.ts';

/**
 * chokidar reports a file's change at most once per 50 ms and drops, with no trailing event, any
 * change in that window: a write landing just after our own save would never be reported. Every
 * change is therefore reported once more a little after the window closes.
 */
const CHOKIDAR_CHANGE_THROTTLE_MS = 50;
const TRAILING_CHANGE_MS = CHOKIDAR_CHANGE_THROTTLE_MS + 25;

export type WatchEventType = 'change' | 'unlink' | 'unlinkDir';

export type WorkspaceWatcherOptions = {
  root: string;
  matcher: GitignoreMatcher;
  /** Paths never watched besides what .gitignore says (our own state directory, when inside the root). */
  isExcluded: (path: string) => boolean;
  onEvent: (type: WatchEventType, path: string) => void;
  onError: (error: Error) => void;
};

export type WorkspaceWatcher = {
  /** Resolves once the tree has been scanned and every watch is in place. */
  readonly ready: Promise<void>;
  /** Watches the directory of an ignored file that someone opened anyway; call the result to stop. */
  watchIgnoredFile(path: string): () => void;
  close(): Promise<void>;
};

/**
 * One watcher over the whole workspace that never enters what .gitignore ignores (a large
 * node_modules costs no inotify watch and no scan), never follows symlinks out of the tree, and
 * reports only files. An editor-open file that .gitignore ignores (a `.env`) is watched through a
 * second, shallow watcher on its own directory.
 */
export function createWorkspaceWatcher(options: WorkspaceWatcherOptions): WorkspaceWatcher {
  const { matcher } = options;
  const isTemp = (path: string) => TEMP_FILE_PATTERN.test(basename(path));
  const main: FSWatcher = chokidar.watch(options.root, {
    ignoreInitial: true,
    followSymlinks: false,
    atomic: true,
    ignored: (path, stats) => isTemp(path) || options.isExcluded(path) || matcher.isIgnored(path, stats?.isDirectory() ?? false),
  });
  const extra: FSWatcher = chokidar.watch([], {
    ignoreInitial: true,
    followSymlinks: false,
    atomic: true,
    depth: 0,
    ignored: (path) => isTemp(path),
  });
  const extraDirs = new Map<string, number>();
  /** Per watcher, so releasing an ignored file's folder cancels only what that watch scheduled. */
  const trailingOf = new Map<FSWatcher, Map<string, NodeJS.Timeout>>([
    [main, new Map()],
    [extra, new Map()],
  ]);
  let closed = false;

  function reportChange(watcher: FSWatcher, path: string): void {
    options.onEvent('change', path);
    const trailing = trailingOf.get(watcher)!;
    clearTimeout(trailing.get(path));
    trailing.set(
      path,
      setTimeout(() => {
        trailing.delete(path);
        if (!closed) options.onEvent('change', path);
      }, TRAILING_CHANGE_MS),
    );
  }

  const ready = new Promise<void>((resolve) => main.once('ready', () => resolve()));

  function onGitignore(path: string): void {
    matcher.invalidate(dirname(path));
    // Re-scan so a directory the changed rules no longer ignore gets watched.
    main.add(dirname(path));
  }

  /** chokidar may still emit an event it had pending (throttled, atomic-write wait) after unwatch. */
  const released = (watcher: FSWatcher, path: string) => watcher === extra && !extraDirs.has(dirname(path));

  for (const watcher of [main, extra]) {
    watcher.on('add', (path) => {
      if (released(watcher, path)) return;
      if (watcher === main && basename(path) === '.gitignore') onGitignore(path);
      reportChange(watcher, path);
    });
    watcher.on('change', (path) => {
      if (released(watcher, path)) return;
      if (watcher === main && basename(path) === '.gitignore') onGitignore(path);
      reportChange(watcher, path);
    });
    watcher.on('unlink', (path) => {
      if (released(watcher, path)) return;
      if (watcher === main && basename(path) === '.gitignore') onGitignore(path);
      options.onEvent('unlink', path);
    });
    // Files inside a removed directory may not get an unlink of their own.
    watcher.on('unlinkDir', (path) => options.onEvent('unlinkDir', path));
    watcher.on('error', (err) => options.onError(err as Error));
  }

  return {
    ready,
    watchIgnoredFile(path) {
      const dir = dirname(path);
      const count = extraDirs.get(dir) ?? 0;
      extraDirs.set(dir, count + 1);
      if (count === 0) extra.add(dir);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (extraDirs.get(dir) ?? 1) - 1;
        if (left > 0) extraDirs.set(dir, left);
        else {
          extraDirs.delete(dir);
          extra.unwatch(dir);
          const trailing = trailingOf.get(extra)!;
          for (const [file, timer] of trailing) {
            if (dirname(file) !== dir) continue;
            clearTimeout(timer);
            trailing.delete(file);
          }
        }
      };
    },
    async close() {
      closed = true;
      for (const trailing of trailingOf.values()) {
        for (const timer of trailing.values()) clearTimeout(timer);
        trailing.clear();
      }
      await Promise.all([main.close(), extra.close()]);
    },
  };
}
