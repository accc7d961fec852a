import { basename, dirname } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import { TEMP_FILE_PATTERN } from './doc-file.ts';
import type { GitignoreMatcher } from './gitignore-matcher.ts';

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

  const ready = new Promise<void>((resolve) => main.once('ready', () => resolve()));

  function onGitignore(path: string): void {
    matcher.invalidate(dirname(path));
    // Re-scan so a directory the changed rules no longer ignore gets watched.
    main.add(dirname(path));
  }

  for (const watcher of [main, extra]) {
    watcher.on('add', (path) => {
      if (watcher === main && basename(path) === '.gitignore') onGitignore(path);
      options.onEvent('change', path);
    });
    watcher.on('change', (path) => {
      if (watcher === main && basename(path) === '.gitignore') onGitignore(path);
      options.onEvent('change', path);
    });
    watcher.on('unlink', (path) => {
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
        }
      };
    },
    async close() {
      await Promise.all([main.close(), extra.close()]);
    },
  };
}
