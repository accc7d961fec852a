import { describeError } from '../lib/api.ts';
import { askText, confirmAction } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { icon } from '../lib/icons.ts';
import { baseName, checkEntryName, isSameOrUnder, joinPath, parentOf } from '../lib/paths.ts';
import { showToast } from '../lib/toast.ts';
import { deletePath, listDirectory, makeDirectory, renamePath, writeFile, type TreeEntry } from './files-api.ts';

export type FileTreeEvents = {
  onOpenFile(path: string): void;
  onDeleted(path: string): void;
  onRenamed(from: string, to: string): void;
};

export type FileTree = {
  element: HTMLElement;
  refresh(): Promise<void>;
  dispose(): void;
};

function sortEntries(entries: TreeEntry[]): TreeEntry[] {
  return [...entries].sort((a, b) => (a.type === 'directory') === (b.type === 'directory') ? a.name.localeCompare(b.name) : a.type === 'directory' ? -1 : 1);
}

/** The workspace's files: lazy folders, create/rename/delete, and drops from the desktop. */
export function createFileTree(workspace: string, events: FileTreeEvents, options: { pollMs: number }): FileTree {
  const listings = new Map<string, TreeEntry[]>();
  const expanded = new Set<string>(['']);
  let selected: { path: string; isDir: boolean } | undefined;
  let disposed = false;

  const list = h('div', { class: 'file-tree', role: 'tree', 'aria-label': 'Files' });
  const element = h(
    'aside',
    { class: 'sidebar' },
    h(
      'div',
      { class: 'sidebar-header' },
      h('span', { class: 'sidebar-title' }, 'Files'),
      h('button', { class: 'icon', title: 'New file', 'aria-label': 'New file', onclick: () => createEntry('file') }, icon('newFile')),
      h('button', { class: 'icon', title: 'New folder', 'aria-label': 'New folder', onclick: () => createEntry('directory') }, icon('newFolder')),
      h('button', { class: 'icon', title: 'Refresh', 'aria-label': 'Refresh files', onclick: () => refresh().catch(report) }, icon('refresh')),
    ),
    list,
  );

  function report(err: unknown): void {
    showToast(describeError(err), 'error');
  }

  async function load(dir: string): Promise<void> {
    listings.set(dir, sortEntries(await listDirectory(workspace, dir)));
  }

  async function refresh(): Promise<void> {
    const dirs = [...expanded];
    const results = await Promise.allSettled(dirs.map(load));
    results.forEach((r, i) => {
      // A folder that vanished is collapsed rather than reported again on every poll.
      if (r.status === 'rejected' && dirs[i] !== '') {
        expanded.delete(dirs[i]);
        listings.delete(dirs[i]);
      }
    });
    const rootFailure = results[dirs.indexOf('')];
    render();
    if (rootFailure?.status === 'rejected') throw rootFailure.reason;
  }

  function folderOfSelection(): string {
    if (!selected) return '';
    return selected.isDir ? selected.path : parentOf(selected.path);
  }

  async function createEntry(type: 'file' | 'directory', inDir = folderOfSelection()): Promise<void> {
    const name = await askText(type === 'file' ? 'New file' : 'New folder', {
      label: inDir ? `Name (in ${inDir}/)` : 'Name',
      confirmLabel: 'Create',
      validate: checkEntryName,
    });
    if (!name) return;
    const path = joinPath(inDir, name);
    try {
      if (type === 'file') {
        await writeFile(workspace, path, new Blob([]), { createOnly: true });
      } else {
        await makeDirectory(workspace, path);
      }
      for (let dir = parentOf(path); ; dir = parentOf(dir)) {
        expanded.add(dir);
        if (dir === '') break;
      }
      selected = { path, isDir: type === 'directory' };
      await refresh();
      if (type === 'file') events.onOpenFile(path);
    } catch (err) {
      report(err);
    }
  }

  async function renameEntry(entryPath: string): Promise<void> {
    const name = await askText('Rename', { initial: baseName(entryPath), confirmLabel: 'Rename', validate: checkEntryName });
    if (!name || name === baseName(entryPath)) return;
    const to = joinPath(parentOf(entryPath), name);
    try {
      await renamePath(workspace, entryPath, to);
      for (const dir of [...expanded]) {
        if (isSameOrUnder(dir, entryPath) && dir !== '') {
          expanded.delete(dir);
          expanded.add(to + dir.slice(entryPath.length));
        }
      }
      events.onRenamed(entryPath, to);
      await refresh();
    } catch (err) {
      report(err);
    }
  }

  async function deleteEntry(entry: TreeEntry, entryPath: string): Promise<void> {
    const what = entry.type === 'directory' ? `the folder "${entryPath}" and everything in it` : `"${entryPath}"`;
    if (!(await confirmAction('Delete', `Delete ${what}?`))) return;
    try {
      await deletePath(workspace, entryPath);
      events.onDeleted(entryPath);
      await refresh();
    } catch (err) {
      report(err);
    }
  }

  async function toggleFolder(path: string): Promise<void> {
    if (expanded.has(path)) {
      expanded.delete(path);
      render();
      return;
    }
    expanded.add(path);
    try {
      await load(path);
    } catch (err) {
      expanded.delete(path);
      report(err);
    }
    render();
  }

  function renderEntries(dir: string, depth: number): HTMLElement[] {
    const rows: HTMLElement[] = [];
    for (const entry of listings.get(dir) ?? []) {
      const path = joinPath(dir, entry.name);
      const isDir = entry.type === 'directory';
      const open = isDir && expanded.has(path);
      const row = h(
        'div',
        {
          class: `tree-row${entry.ignored ? ' ignored' : ''}${selected?.path === path ? ' selected' : ''}`,
          role: 'treeitem',
          tabindex: 0,
          title: entry.ignored ? `${path} (ignored by .gitignore)` : path,
          'aria-expanded': isDir ? String(open) : undefined,
          style: `padding-left:${0.5 + depth * 0.9}em`,
          dataset: { path, type: entry.type },
          onclick: () => {
            selected = { path, isDir };
            if (isDir) void toggleFolder(path);
            else {
              render();
              events.onOpenFile(path);
            }
          },
          onkeydown: (e: KeyboardEvent) => {
            if (e.key === 'Enter') (e.currentTarget as HTMLElement).click();
            else if (e.key === 'F2') void renameEntry(path);
            else if (e.key === 'Delete') void deleteEntry(entry, path);
          },
        },
        h('span', { class: 'tree-twisty', 'aria-hidden': 'true' }, isDir ? (open ? '▾' : '▸') : ''),
        h('span', { class: 'tree-name' }, entry.name + (entry.type === 'symlink' ? ' →' : '')),
        h(
          'span',
          { class: 'tree-actions' },
          isDir && h('button', { class: 'icon', title: `New file in ${path}`, 'aria-label': `New file in ${path}`, onclick: (e: Event) => (e.stopPropagation(), createEntry('file', path)) }, icon('newFile')),
          h('button', { class: 'icon', title: `Rename ${path}`, 'aria-label': `Rename ${path}`, onclick: (e: Event) => (e.stopPropagation(), renameEntry(path)) }, icon('rename')),
          h('button', { class: 'icon', title: `Delete ${path}`, 'aria-label': `Delete ${path}`, onclick: (e: Event) => (e.stopPropagation(), deleteEntry(entry, path)) }, icon('trash')),
        ),
      );
      rows.push(row);
      if (open) rows.push(...renderEntries(path, depth + 1));
    }
    return rows;
  }

  let renderedSignature = '';
  function render(): void {
    // Polling re-reads folders every few seconds; redraw only when something changed, so
    // focus and hover states are not lost.
    const signature = JSON.stringify([[...expanded].sort(), selected, [...listings].filter(([dir]) => expanded.has(dir)).map(([dir, entries]) => [dir, entries.map((e) => [e.name, e.type, e.ignored])])]);
    if (signature === renderedSignature) return;
    renderedSignature = signature;
    const rows = renderEntries('', 0);
    renderInto(list, ...(rows.length > 0 ? rows : [h('div', { class: 'tree-empty muted' }, 'No files yet. Create one, or drop files here.')]));
  }

  // Dropping files from the desktop uploads them into the folder under the pointer.
  function dropTarget(event: DragEvent): string {
    const row = (event.target as HTMLElement).closest<HTMLElement>('.tree-row');
    if (!row) return '';
    return row.dataset.type === 'directory' ? row.dataset.path ?? '' : parentOf(row.dataset.path ?? '');
  }

  list.addEventListener('dragover', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    list.classList.add('drop-active');
  });
  list.addEventListener('dragleave', (e) => {
    if (!list.contains(e.relatedTarget as Node | null)) list.classList.remove('drop-active');
  });
  list.addEventListener('drop', (e) => {
    e.preventDefault();
    list.classList.remove('drop-active');
    const target = dropTarget(e);
    const items = [...(e.dataTransfer?.items ?? [])].filter((i) => i.kind === 'file');
    const entries = items.map((i) => i.webkitGetAsEntry?.() ?? null);
    const files = [...(e.dataTransfer?.files ?? [])];
    void uploadDropped(target, entries, files);
  });

  async function uploadDropped(dir: string, entries: (FileSystemEntry | null)[], files: File[]): Promise<void> {
    const uploads: { path: string; file: File }[] = [];
    const folders: string[] = [];
    try {
      if (entries.length > 0 && entries.every((e) => e !== null)) {
        for (const entry of entries) await collectEntry(entry!, dir, uploads, folders);
      } else {
        for (const file of files) uploads.push({ path: joinPath(dir, file.name), file });
      }
      for (const folder of folders) await makeDirectory(workspace, folder);
      for (const { path, file } of uploads) await writeFile(workspace, path, file);
      expanded.add(dir);
      await refresh();
      showToast(`Uploaded ${uploads.length} file${uploads.length === 1 ? '' : 's'}${dir ? ` to ${dir}/` : ''}.`);
    } catch (err) {
      report(err);
      await refresh().catch(() => undefined);
    }
  }

  async function collectEntry(entry: FileSystemEntry, dir: string, uploads: { path: string; file: File }[], folders: string[]): Promise<void> {
    const path = joinPath(dir, entry.name);
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      uploads.push({ path, file });
      return;
    }
    folders.push(path);
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries returns the folder in batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await collectEntry(child, path, uploads, folders);
    }
  }

  // Files made in a terminal or by a deploy show up without a manual refresh.
  const timer = setInterval(() => {
    if (!disposed && document.visibilityState === 'visible') refresh().catch(() => undefined);
  }, options.pollMs);

  return {
    element,
    refresh,
    dispose() {
      disposed = true;
      clearInterval(timer);
    },
  };
}
