import type { Workspace } from '../../../server/common/index.ts';
import { createDeployPanel } from '../deploy/deploy-panel.ts';
import { openSessionsDialog } from '../hybrid/sessions-dialog.ts';
import { createEditorArea, type EditorSummary } from '../editor/editor-area.ts';
import { createEnvPanel } from '../env/env-panel.ts';
import { createFileTree } from '../files/file-tree.ts';
import { ApiError, describeError, getWorkspace, startWorkspace, stopWorkspace } from '../lib/api.ts';
import { askText } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { loadIdentity, pickColor, saveIdentityName } from '../lib/identity.ts';
import { showToast } from '../lib/toast.ts';
import { createPortsPanel } from '../preview/ports-panel.ts';
import { createTerminalPanel } from '../terminal/terminal-panel.ts';
import { renderHeader, renderSignOut } from './workspace-list.ts';

const TREE_POLL_MS = 5000;

function describeConnection(summary: EditorSummary): { text: string; state: string } {
  const s = summary.status;
  if (s.deleted) return { text: 'Deleted', state: 'closed' };
  if (s.connection === 'closed') return { text: 'Disconnected', state: 'closed' };
  if (s.connection === 'connecting') return { text: 'Connecting…', state: 'connecting' };
  if (s.connection === 'disconnected') return { text: 'Offline — reconnecting…', state: 'disconnected' };
  return { text: 'Connected', state: 'connected' };
}

function describeSync(summary: EditorSummary): { text: string; state: string } {
  const s = summary.status;
  if (s.readOnly) return { text: 'Read-only', state: 'read-only' };
  if (s.connection !== 'connected') return s.pending ? { text: 'Edits kept locally', state: 'offline-edits' } : { text: 'Not synced', state: 'unsynced' };
  if (!s.synced) return { text: 'Syncing…', state: 'syncing' };
  return s.pending ? { text: 'Saving…', state: 'saving' } : { text: 'Synced', state: 'synced' };
}

/** The IDE page of one workspace: file tree, editor tabs, terminals, deploys and a status bar. */
export async function showWorkspace(root: HTMLElement, id: string): Promise<void> {
  let workspace: Workspace;
  try {
    workspace = await getWorkspace(id);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      renderInto(root, h('div', { class: 'page-message' }, h('h2', {}, `No workspace "${id}"`), h('p', {}, h('a', { href: '/' }, 'Back to workspaces'))));
      return;
    }
    throw err;
  }
  document.title = `${workspace.name} — wharf`;
  const identity = loadIdentity();

  if (workspace.status !== 'running') {
    const start: HTMLButtonElement = h(
      'button',
      {
        onclick: async () => {
          start.disabled = true;
          try {
            await startWorkspace(id);
            await showWorkspace(root, id);
          } catch (err) {
            showToast(describeError(err), 'error');
            start.disabled = false;
          }
        },
      },
      'Start workspace',
    );
    renderInto(root, h('div', { class: 'page' }, renderHeader(renderSignOut()), h('div', { class: 'page-message' }, h('h2', {}, `${workspace.name} is ${workspace.status}`), h('p', {}, start, ' ', h('a', { href: '/' }, 'Back to workspaces')))));
    return;
  }

  // Status bar pieces, filled in by the editor's summaries.
  const connectionItem = h('span', { class: 'status-item', dataset: { item: 'connection' } });
  const syncItem = h('span', { class: 'status-item', dataset: { item: 'sync' } });
  const peersItem = h('span', { class: 'status-item peers', dataset: { item: 'peers' } });
  const positionItem = h('span', { class: 'status-item', dataset: { item: 'position' } });
  const languageItem = h('span', { class: 'status-item', dataset: { item: 'language' } });
  const nameButton = h('button', { class: 'status-item status-button', title: 'The name others see beside your cursor', onclick: () => void rename() }, `You: ${identity.name}`);

  async function rename(): Promise<void> {
    const name = await askText('Your name', { initial: identity.name, confirmLabel: 'Save', validate: (v) => (v.length > 40 ? 'At most 40 characters.' : undefined) });
    if (!name) return;
    saveIdentityName(name);
    showToast('Your new name shows in files you open from now on.');
    identity.name = name;
    identity.color = pickColor(name);
    nameButton.textContent = `You: ${name}`;
  }

  function showSummary(summary: EditorSummary | undefined): void {
    if (!summary) {
      for (const item of [connectionItem, syncItem, peersItem, positionItem, languageItem]) {
        item.textContent = '';
        item.hidden = true;
      }
      return;
    }
    const connection = describeConnection(summary);
    const sync = describeSync(summary);
    connectionItem.hidden = syncItem.hidden = peersItem.hidden = positionItem.hidden = languageItem.hidden = false;
    connectionItem.textContent = connection.text;
    connectionItem.dataset.state = connection.state;
    syncItem.textContent = sync.text;
    syncItem.dataset.state = sync.state;
    renderInto(
      peersItem,
      summary.peers.length === 0
        ? 'Only you here'
        : h('span', {}, 'Also here: ', ...summary.peers.map((p) => h('span', { class: 'peer', style: `--peer-color:${p.color}`, title: p.name }, p.name))),
    );
    positionItem.textContent = `Ln ${summary.cursor.line}, Col ${summary.cursor.column}`;
    languageItem.textContent = summary.language;
  }

  const editor = createEditorArea({ workspace: id, identity, onSummary: showSummary });
  const tree = createFileTree(
    id,
    {
      onOpenFile: (path) => editor.open(path),
      onDeleted: (path) => editor.closeUnder(path),
      onRenamed: (from, to) => editor.renameUnder(from, to),
    },
    { pollMs: TREE_POLL_MS },
  );
  const terminals = createTerminalPanel(id);
  const deployButton: HTMLButtonElement = h('button', { class: 'deploy-button', title: 'Run the deploy commands of okteto.yml', onclick: () => void runDeploy('deploy') }, 'Deploy');
  const destroyButton: HTMLButtonElement = h('button', { class: 'secondary small', title: 'Run the destroy commands of okteto.yml', onclick: () => void runDeploy('destroy') }, 'Destroy');
  const deploys = createDeployPanel(id, {
    onRunStateChange: (running) => {
      deployButton.disabled = destroyButton.disabled = running;
      deployButton.textContent = running ? 'Deploying…' : 'Deploy';
    },
  });

  const environment = createEnvPanel(id);
  const ports = createPortsPanel(id, { onCount: (count) => (portsTab.textContent = count > 0 ? `Ports (${count})` : 'Ports') });

  // The bottom panel holds the terminals, the deploy log or the hybrid-mode environment.
  const terminalTab = h('button', { class: 'panel-tab active', role: 'tab', onclick: () => showPanel('terminal') }, 'Terminal');
  const deployTab = h('button', { class: 'panel-tab', role: 'tab', onclick: () => showPanel('deploy') }, 'Deploy');
  const envTab = h('button', { class: 'panel-tab', role: 'tab', title: 'Variables, config sets and secret sets wharf up gives services', onclick: () => showPanel('environment') }, 'Environment');
  const portsTab = h('button', { class: 'panel-tab', role: 'tab', 'aria-label': 'Ports', title: 'TCP ports the workspace listens on, to preview in the browser', onclick: () => showPanel('ports') }, 'Ports');
  const panelBody = h('div', { class: 'panel-body' }, terminals.element, deploys.element, environment.element, ports.element);
  function showPanel(which: 'terminal' | 'deploy' | 'environment' | 'ports'): void {
    terminalTab.classList.toggle('active', which === 'terminal');
    deployTab.classList.toggle('active', which === 'deploy');
    envTab.classList.toggle('active', which === 'environment');
    portsTab.classList.toggle('active', which === 'ports');
    terminals.element.hidden = which !== 'terminal';
    terminals.toolbar.hidden = which !== 'terminal';
    deploys.element.hidden = which !== 'deploy';
    environment.element.hidden = which !== 'environment';
    ports.element.hidden = which !== 'ports';
    if (which === 'terminal') terminals.shown();
    else if (which === 'deploy') deploys.shown();
    else if (which === 'ports') ports.shown();
    else environment.shown();
  }

  async function runDeploy(kind: 'deploy' | 'destroy'): Promise<void> {
    showPanel('deploy');
    await deploys.deploy(kind);
  }

  const stopButton: HTMLButtonElement = h(
    'button',
    {
      class: 'secondary small',
      title: 'Stop this workspace (its processes end)',
      onclick: async () => {
        stopButton.disabled = true;
        try {
          await stopWorkspace(id);
          location.assign('/');
        } catch (err) {
          showToast(describeError(err), 'error');
          stopButton.disabled = false;
        }
      },
    },
    'Stop',
  );

  const sessionsButton = h('button', { class: 'secondary small', title: 'Helpers connected to this workspace (wharf up, wharf ssh)', onclick: () => void openSessionsDialog(id) }, 'Sessions');

  const resizer = h('div', { class: 'panel-resizer', role: 'separator', 'aria-orientation': 'horizontal', title: 'Drag to resize' });
  const panel = h('section', { class: 'bottom-panel' }, h('div', { class: 'panel-header' }, h('div', { class: 'panel-tabs', role: 'tablist' }, terminalTab, deployTab, envTab, portsTab), terminals.toolbar), panelBody);
  const header = renderHeader(sessionsButton, destroyButton, deployButton, stopButton, renderSignOut());
  header.querySelector('.topbar-title')!.append(h('span', { class: 'muted' }, ' / '), h('span', { class: 'workspace-name' }, workspace.name));
  const layout = h(
    'div',
    { class: 'ide' },
    header,
    h('div', { class: 'ide-main' }, tree.element, h('div', { class: 'ide-center' }, editor.element, resizer, panel)),
    h('footer', { class: 'statusbar' }, h('span', { class: 'status-item workspace-status' }, `● ${workspace.name}`), connectionItem, syncItem, peersItem, h('span', { class: 'status-spacer' }), positionItem, languageItem, nameButton),
  );
  renderInto(root, layout);
  showSummary(undefined);
  showPanel('terminal');

  // Dragging the separator resizes the bottom panel; the terminals refit on their own.
  resizer.addEventListener('pointerdown', (down) => {
    const startY = down.clientY;
    const startHeight = panel.getBoundingClientRect().height;
    resizer.setPointerCapture(down.pointerId);
    const move = (e: PointerEvent) => (panel.style.height = `${Math.max(80, Math.min(window.innerHeight - 160, startHeight + startY - e.clientY))}px`);
    const up = () => {
      resizer.removeEventListener('pointermove', move);
      resizer.removeEventListener('pointerup', up);
    };
    resizer.addEventListener('pointermove', move);
    resizer.addEventListener('pointerup', up);
  });

  await tree.refresh().catch((err) => showToast(`Could not list files: ${describeError(err)}`, 'error'));
  void terminals.start();
  // The port list is followed from the start, so a port that opens is announced on any tab.
  ports.start();
  // A deploy already running (started elsewhere) shows as such on the button.
  deploys.shown();

  window.addEventListener('pagehide', () => {
    editor.dispose();
    terminals.dispose();
    ports.dispose();
    deploys.dispose();
    tree.dispose();
  });
}
