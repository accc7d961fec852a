import { describeError, getWorkspace } from '../lib/api.ts';
import { confirmAction } from '../lib/dialog.ts';
import { h } from '../lib/dom.ts';
import { showToast } from '../lib/toast.ts';
import { openShareDialog } from './share-dialog.ts';
import { TerminalSession, type TerminalSessionState } from './terminal-session.ts';
import { buildAttachUrl, createTerminal, killTerminal, listTerminals } from './terminals-api.ts';

type Tab = { id: string; label: string; session: TerminalSession; pane: HTMLElement; button: HTMLElement; status: HTMLElement };

export type TerminalPanel = {
  /** The tab strip's own controls (new, share), shown in the panel header. */
  toolbar: HTMLElement;
  element: HTMLElement;
  /** Attaches to existing terminals, or opens a first one. */
  start(): Promise<void>;
  shown(): void;
  dispose(): void;
};

/** Terminal tabs under the editor: each one an xterm view attached to a shared pty. */
export function createTerminalPanel(workspace: string): TerminalPanel {
  const tabs = new Map<string, Tab>();
  let active: Tab | undefined;
  let counter = 0;

  const strip = h('div', { class: 'terminal-tabs', role: 'tablist', 'aria-label': 'Terminals' });
  const shareButton: HTMLButtonElement = h('button', { class: 'secondary small', title: 'Share the active terminal', disabled: true, onclick: () => active && openShareDialog(workspace, active.id, active.label) }, 'Share');
  const newButton: HTMLButtonElement = h('button', { class: 'icon', title: 'New terminal', 'aria-label': 'New terminal', onclick: () => void openNew() }, '+');
  const toolbar = h('div', { class: 'terminal-toolbar' }, strip, newButton, shareButton);
  const panes = h('div', { class: 'terminal-panes' });
  const empty = h('div', { class: 'terminal-empty muted' }, 'No terminal. ', h('button', { class: 'secondary small', onclick: () => void openNew() }, 'Open one'));
  const element = h('div', { class: 'terminal-panel' }, panes, empty);

  function activate(id: string | undefined): void {
    active = id === undefined ? undefined : tabs.get(id);
    for (const tab of tabs.values()) {
      tab.pane.hidden = tab !== active;
      tab.button.classList.toggle('active', tab === active);
      tab.button.setAttribute('aria-selected', String(tab === active));
    }
    empty.hidden = tabs.size > 0;
    shareButton.disabled = !active;
    if (active) {
      active.session.refit();
      active.session.focus();
    }
  }

  function describeState(state: TerminalSessionState): string {
    if (state.exitCode !== undefined) return `exited (${state.exitCode})`;
    if (state.connection === 'connected') return state.role === 'viewer' ? 'read-only' : '';
    if (state.connection === 'closed') return state.error ?? 'closed';
    return state.connection === 'connecting' ? 'connecting…' : 'reconnecting…';
  }

  function attach(id: string): Tab {
    const existing = tabs.get(id);
    if (existing) return existing;
    counter++;
    const label = `Terminal ${counter}`;
    const host = h('div', { class: 'terminal-host' });
    const pane = h('div', { class: 'terminal-pane', dataset: { terminal: id } }, host);
    panes.append(pane);
    const status = h('span', { class: 'tab-status' });
    const close = h('button', { class: 'icon tab-close', title: `Close ${label}`, 'aria-label': `Close ${label}`, onclick: (e: Event) => (e.stopPropagation(), void closeTab(id)) }, '×');
    const name = h('span', { class: 'tab-name' }, label);
    const button = h('div', { class: 'tab', role: 'tab', dataset: { terminal: id }, onclick: () => activate(id) }, name, status, close);
    strip.append(button);
    const tab: Tab = { id, label, pane, button, status, session: undefined as unknown as TerminalSession };
    tab.session = new TerminalSession(host, (size) => buildAttachUrl(workspace, id, size), (state) => {
      status.textContent = describeState(state);
      // The program's title names the tab (the same for everyone attached); the number until it sets one.
      name.textContent = state.title || label;
      button.title = state.title ? `${state.title} (${label})` : label;
      button.classList.toggle('offline', state.connection !== 'connected');
      button.classList.toggle('exited', state.exitCode !== undefined);
    }, () => void getWorkspace(workspace).catch(() => undefined));
    tabs.set(id, tab);
    return tab;
  }

  async function openNew(): Promise<void> {
    newButton.disabled = true;
    try {
      const size = active ? { cols: active.session.terminal.cols, rows: active.session.terminal.rows } : { cols: 100, rows: 24 };
      const info = await createTerminal(workspace, size);
      activate(attach(info.id).id);
    } catch (err) {
      showToast(`Could not open a terminal: ${describeError(err)}`, 'error');
    } finally {
      newButton.disabled = false;
    }
  }

  async function closeTab(id: string): Promise<void> {
    const tab = tabs.get(id);
    if (!tab) return;
    const exited = tab.session.state.exitCode !== undefined || tab.session.state.connection === 'closed';
    if (!exited && !(await confirmAction('Close terminal', `End ${tab.label}? Its processes are killed for everyone attached to it.`, 'End terminal'))) return;
    if (!exited) {
      try {
        await killTerminal(workspace, id);
      } catch (err) {
        showToast(describeError(err), 'error');
      }
    }
    tab.session.destroy();
    tab.pane.remove();
    tab.button.remove();
    tabs.delete(id);
    if (active === tab) activate([...tabs.keys()].pop());
    else empty.hidden = tabs.size > 0;
  }

  return {
    toolbar,
    element,
    async start() {
      try {
        const existing = await listTerminals(workspace);
        const running = existing.filter((t) => !t.exited);
        for (const t of running) attach(t.id);
        if (running.length > 0) activate(running[0].id);
        else await openNew();
      } catch (err) {
        activate(undefined);
        showToast(`Terminals are unavailable: ${describeError(err)}`, 'error');
      }
    },
    shown() {
      active?.session.refit();
    },
    dispose() {
      for (const tab of tabs.values()) tab.session.destroy();
      tabs.clear();
    },
  };
}
