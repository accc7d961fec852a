import { MonacoBinding } from 'y-monaco';
import type { Awareness } from 'y-protocols/awareness';
import type * as Y from 'yjs';
import { DOC_TEXT_NAME } from '../../../server/common/protocol.ts';
import { describeError, getWorkspace, websocketUrl } from '../lib/api.ts';
import { h, renderInto } from '../lib/dom.ts';
import { describeReadOnly } from '../lib/format.ts';
import type { Identity } from '../lib/identity.ts';
import { baseName, encodePathForUrl, isSameOrUnder } from '../lib/paths.ts';
import { showToast } from '../lib/toast.ts';
import { DocConnection, type DocStatus } from './doc-connection.ts';
import { monaco } from './monaco-setup.ts';
import { updateRemoteCursorStyles } from './remote-cursors.ts';

// Projects' imports cannot be resolved in the browser: semantic errors would only be noise.
monaco.typescript.typescriptDefaults.setDiagnosticsOptions({ noSemanticValidation: true, noSyntaxValidation: false });
monaco.typescript.javascriptDefaults.setDiagnosticsOptions({ noSemanticValidation: true, noSyntaxValidation: false });

/** Larger files that are too big to edit live are not loaded into the browser either. */
const STATIC_VIEW_MAX_BYTES = 32 * 1024 * 1024;

export type Peer = { name: string; color: string };

/** What the status bar shows about the active file. */
export type EditorSummary = {
  path: string;
  status: DocStatus;
  peers: Peer[];
  language: string;
  cursor: { line: number; column: number };
};

type Tab = {
  path: string;
  connection: DocConnection;
  model: monaco.editor.ITextModel;
  editor: monaco.editor.IStandaloneCodeEditor;
  binding: MonacoBinding;
  pane: HTMLElement;
  notice: HTMLElement;
  button: HTMLElement;
  firstSyncDone: boolean;
  /** Binary and too-large files are not live documents: shown from the files API instead. */
  staticView: boolean;
  /** Shown after the notice text of a static view: the download link, a load error. */
  staticNote: HTMLElement;
};

export type EditorArea = {
  element: HTMLElement;
  open(path: string): void;
  /** Closes tabs for the path and anything under it (a deleted folder). */
  closeUnder(path: string, notice?: string): void;
  /** Reopens tabs under a renamed path at their new place. */
  renameUnder(from: string, to: string): void;
  openPaths(): string[];
  dispose(): void;
};

export function createEditorArea(options: { workspace: string; identity: Identity; onSummary: (summary: EditorSummary | undefined) => void }): EditorArea {
  const tabs = new Map<string, Tab>();
  let active: Tab | undefined;

  const tabBar = h('div', { class: 'tab-bar', role: 'tablist', 'aria-label': 'Open files' });
  const panes = h('div', { class: 'editor-panes' });
  const placeholder = h('div', { class: 'editor-placeholder' }, h('p', {}, 'Open a file from the tree.'), h('p', { class: 'muted' }, 'Edits are written to the workspace as you type.'));
  const element = h('section', { class: 'editor-area' }, tabBar, panes, placeholder);

  function collectPeers(tab: Tab): Peer[] {
    const peers: Peer[] = [];
    tab.connection.awareness.getStates().forEach((state, clientId) => {
      if (clientId === tab.connection.doc.clientID) return;
      const user = (state as { user?: Peer }).user;
      if (user?.name) peers.push({ name: user.name, color: user.color });
    });
    return peers;
  }

  function publishSummary(): void {
    if (!active) return options.onSummary(undefined);
    const position = active.editor.getPosition();
    options.onSummary({
      path: active.path,
      status: { ...active.connection.status },
      peers: collectPeers(active),
      language: active.model.getLanguageId(),
      cursor: { line: position?.lineNumber ?? 1, column: position?.column ?? 1 },
    });
  }

  function applyStatus(tab: Tab, status: DocStatus): void {
    if (status.synced) tab.firstSyncDone = true;
    // Until the first sync the model is empty: typing then would land in the wrong place.
    const readOnly = status.readOnly || !tab.firstSyncDone || status.connection === 'closed';
    const why = describeReadOnly(status.reason, status.size);
    tab.editor.updateOptions({ readOnly, readOnlyMessage: { value: why } });
    let text = '';
    if (status.readOnly) text = why;
    else if (status.connection === 'closed' && status.error) text = `Disconnected: ${status.error}`;
    else if (status.error) text = status.error;
    if (status.readOnly && (status.reason === 'binary' || status.reason === 'too_large') && !tab.staticView) showStatic(tab, status.reason, status.size);
    renderInto(tab.notice, text, tab.staticView && tab.staticNote);
    tab.notice.hidden = !text;
    tab.button.classList.toggle('offline', status.connection !== 'connected');
    tab.button.classList.toggle('pending', status.pending);
    tab.button.dataset.sync = !tab.firstSyncDone ? 'loading' : status.pending ? 'pending' : 'synced';
    if (status.deleted) {
      closeTab(tab.path);
      showToast(`"${tab.path}" was deleted; its tab was closed.`, 'warning');
      return;
    }
    if (tab === active) publishSummary();
  }

  function showStatic(tab: Tab, reason: 'binary' | 'too_large', size: number | undefined): void {
    tab.staticView = true;
    tab.binding.destroy();
    const url = `/api/workspaces/${encodeURIComponent(options.workspace)}/files/${encodePathForUrl(tab.path)}`;
    tab.staticNote.append(' ', h('a', { href: url, download: baseName(tab.path) }, 'Download it'), '.');
    if (reason === 'binary' || (size ?? 0) > STATIC_VIEW_MAX_BYTES) {
      tab.pane.classList.add('unviewable');
      return;
    }
    fetch(url, { credentials: 'same-origin' })
      .then(async (res) => {
        if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
        const content = await res.text();
        if (!tab.model.isDisposed()) tab.model.setValue(content);
      })
      .catch((err: unknown) => tab.staticNote.append(` (could not load it: ${describeError(err)})`));
  }

  function bind(tab: Pick<Tab, 'model' | 'editor'>, text: Y.Text, awareness: Awareness): MonacoBinding {
    return new MonacoBinding(text, tab.model, new Set([tab.editor]), awareness);
  }

  function activate(path: string | undefined): void {
    active = path === undefined ? undefined : tabs.get(path);
    for (const tab of tabs.values()) {
      const selected = tab === active;
      tab.pane.hidden = !selected;
      tab.button.classList.toggle('active', selected);
      tab.button.setAttribute('aria-selected', String(selected));
    }
    placeholder.hidden = tabs.size > 0;
    if (active) {
      active.editor.layout();
      active.editor.focus();
    }
    publishSummary();
  }

  function open(path: string): void {
    if (tabs.has(path)) return activate(path);
    const container = h('div', { class: 'monaco-host' });
    const notice = h('div', { class: 'editor-notice', role: 'status', hidden: true });
    const pane = h('div', { class: 'editor-pane', dataset: { path } }, notice, container);
    panes.append(pane);
    const uri = monaco.Uri.from({ scheme: 'wharf', path: `/${options.workspace}/${path}` });
    monaco.editor.getModel(uri)?.dispose();
    // No language given: Monaco picks it from the file name (extension, well-known names).
    const model = monaco.editor.createModel('', undefined, uri);
    const editor = monaco.editor.create(container, {
      model,
      automaticLayout: true,
      theme: 'vs-dark',
      readOnly: true,
      minimap: { enabled: false },
      fontSize: 13,
      scrollBeyondLastLine: false,
      renderWhitespace: 'selection',
    });
    const closeButton = h('button', { class: 'icon tab-close', title: `Close ${path}`, 'aria-label': `Close ${path}`, onclick: (e: Event) => (e.stopPropagation(), closeTab(path)) }, '×');
    const name = path.split('/').pop() ?? path;
    const button = h('div', { class: 'tab', role: 'tab', title: path, dataset: { path, sync: 'loading' }, onclick: () => activate(path), onauxclick: (e: MouseEvent) => e.button === 1 && closeTab(path) }, h('span', { class: 'tab-name' }, name), h('span', { class: 'tab-dot', 'aria-hidden': 'true' }), closeButton);
    tabBar.append(button);

    const connection = new DocConnection({
      url: websocketUrl(`/api/workspaces/${encodeURIComponent(options.workspace)}/docs?path=${encodeURIComponent(path)}`),
      user: options.identity,
      onStatus: (status) => applyStatus(tab, status),
      onRepeatedFailure: () => void getWorkspace(options.workspace).catch(() => undefined),
      onDocReplaced: (doc, awareness) => {
        if (tab.staticView) return;
        tab.binding.destroy();
        tab.binding = bind(tab, doc.getText(DOC_TEXT_NAME), awareness);
        watchAwareness(tab, awareness);
        showToast(`"${path}" was reloaded from the workspace; your unsaved edits were merged in.`, 'warning');
      },
    });
    const tab: Tab = { path, model, editor, pane, notice, button, firstSyncDone: false, staticView: false, staticNote: h('span'), connection, binding: bind({ model, editor }, connection.text, connection.awareness) };
    watchAwareness(tab, tab.connection.awareness);
    connection.start();
    editor.onDidChangeCursorPosition(() => tab === active && publishSummary());
    // Habit from other editors; here there is nothing to save, and the browser's own "save page" would only confuse.
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => showToast('No need to save: edits are written to the workspace as you type.'));
    tabs.set(path, tab);
    activate(path);
  }

  function watchAwareness(tab: Tab, awareness: Awareness): void {
    awareness.on('change', () => {
      updateRemoteCursorStyles(awareness);
      if (tab === active) publishSummary();
    });
  }

  function closeTab(path: string): void {
    const tab = tabs.get(path);
    if (!tab) return;
    tabs.delete(path);
    tab.binding.destroy();
    tab.connection.destroy();
    tab.editor.dispose();
    tab.model.dispose();
    tab.pane.remove();
    tab.button.remove();
    if (active === tab) activate([...tabs.keys()].pop());
    else placeholder.hidden = tabs.size > 0;
  }

  return {
    element,
    open,
    closeUnder(path, notice) {
      const closing = [...tabs.keys()].filter((p) => isSameOrUnder(p, path));
      for (const p of closing) closeTab(p);
      if (closing.length > 0 && notice) showToast(notice, 'warning');
    },
    renameUnder(from, to) {
      const previouslyActive = active?.path;
      const moved = [...tabs.keys()].filter((p) => isSameOrUnder(p, from));
      for (const p of moved) {
        closeTab(p);
        open(to + p.slice(from.length));
      }
      if (previouslyActive !== undefined) {
        activate(isSameOrUnder(previouslyActive, from) ? to + previouslyActive.slice(from.length) : previouslyActive);
      }
    },
    openPaths: () => [...tabs.keys()],
    dispose() {
      for (const p of [...tabs.keys()]) closeTab(p);
    },
  };
}
