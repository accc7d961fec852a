import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGitignoreMatcher } from './gitignore-matcher.ts';
import { createWorkspaceWatcher, type WatchEventType, type WorkspaceWatcher } from './workspace-watcher.ts';

async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe('workspace watcher', () => {
  let root: string;
  let watcher: WorkspaceWatcher | undefined;
  const events: Array<[WatchEventType, string]> = [];
  const seen = (type: WatchEventType, rel: string) => events.some(([t, p]) => t === type && p === join(root, rel));

  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'wharf-watch-')));
    events.length = 0;
  });
  afterEach(async () => {
    await watcher?.close();
    await rm(root, { recursive: true, force: true });
  });

  function start(): WorkspaceWatcher {
    watcher = createWorkspaceWatcher({
      root,
      matcher: createGitignoreMatcher(root),
      isExcluded: () => false,
      onEvent: (type, path) => events.push([type, path]),
      onError: (err) => {
        throw err;
      },
    });
    return watcher;
  }

  it('reports files, not what .gitignore ignores or our temp files, and follows .gitignore changes', async () => {
    await writeFile(join(root, '.gitignore'), 'build/\n');
    await mkdir(join(root, 'build'));
    await mkdir(join(root, 'src'));
    await start().ready;
    await writeFile(join(root, 'src', 'a.ts'), 'a');
    await writeFile(join(root, 'build', 'out.js'), 'x');
    await writeFile(join(root, 'src', '.a.ts.wharf-0123456789ab.tmp'), 'temp');
    await eventually(() => expect(seen('change', 'src/a.ts')).toBe(true));
    await new Promise((r) => setTimeout(r, 200));
    expect(events.map(([, p]) => p.slice(root.length + 1)).filter((p) => p !== 'src/a.ts')).toEqual([]);

    // build/ is no longer ignored: the watcher picks it up.
    await writeFile(join(root, '.gitignore'), '');
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(root, 'build', 'later.js'), 'y');
    await eventually(() => expect(seen('change', 'build/later.js')).toBe(true));
  });

  it('reports a second write that lands just after the first was reported', async () => {
    // chokidar drops a file's change events for 50 ms after reporting one (no trailing event):
    // an outside write right after our own save must still be reported.
    await writeFile(join(root, 'notes.md'), 'start');
    await start().ready;
    for (let round = 0; round < 5; round++) {
      events.length = 0;
      await writeFile(join(root, 'notes.md'), `first ${round}`);
      await eventually(() => expect(seen('change', 'notes.md')).toBe(true));
      await new Promise((r) => setTimeout(r, 15));
      events.length = 0;
      await writeFile(join(root, 'notes.md'), `second write of round ${round}`);
      await eventually(() => expect(seen('change', 'notes.md')).toBe(true), 1000);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('watches the folder of an ignored file someone opened, until released', async () => {
    await writeFile(join(root, '.gitignore'), '.env\nvendor/\n');
    await mkdir(join(root, 'vendor', 'lib'), { recursive: true });
    await writeFile(join(root, 'vendor', 'lib', 'x.js'), '1');
    await start().ready;
    const release = watcher!.watchIgnoredFile(join(root, 'vendor', 'lib', 'x.js'));
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(root, 'vendor', 'lib', 'x.js'), '2');
    await eventually(() => expect(seen('change', 'vendor/lib/x.js')).toBe(true));
    release();
    events.length = 0;
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(join(root, 'vendor', 'lib', 'x.js'), '3');
    await new Promise((r) => setTimeout(r, 300));
    expect(events).toEqual([]);
  });
});
