import { requestJson } from '../lib/api.ts';
import { h, renderInto } from '../lib/dom.ts';
import { TerminalSession, type TerminalSessionState } from '../terminal/terminal-session.ts';
import { buildAttachUrl } from '../terminal/terminals-api.ts';

/** The page a share link lands on: one terminal, full window, nothing else of the workspace. */
export function showSharedTerminal(root: HTMLElement, workspace: string, terminalId: string): void {
  document.title = `Shared terminal — ${workspace}`;
  const role = h('span', { class: 'badge share-role', dataset: { role: 'unknown' } }, 'connecting…');
  const state = h('span', { class: 'share-state muted' });
  const expiry = h('span', { class: 'share-expiry muted' });
  const host = h('div', { class: 'terminal-host' });
  renderInto(
    root,
    h(
      'div',
      { class: 'share-page' },
      h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'wharf'), h('div', { class: 'topbar-title' }, h('span', { class: 'muted' }, 'shared terminal in '), h('span', { class: 'workspace-name' }, workspace)), h('div', { class: 'topbar-actions' }, state, expiry, role)),
      h('main', { class: 'share-terminal' }, host),
    ),
  );

  const onState = (s: TerminalSessionState) => {
    document.title = s.title ? `${s.title} — shared terminal in ${workspace}` : `Shared terminal — ${workspace}`;
    if (s.role) {
      role.dataset.role = s.role;
      role.textContent = s.role === 'viewer' ? 'Read-only: you are watching' : 'Editor: you can type';
      role.title = s.role === 'viewer' ? 'This link lets you watch, not type.' : 'Everything you type goes to the shared terminal.';
    }
    if (s.exitCode !== undefined) state.textContent = `The process exited (${s.exitCode}).`;
    else if (s.connection === 'closed') state.textContent = s.error ? `Disconnected: ${s.error}` : 'Disconnected.';
    else if (s.connection === 'disconnected') state.textContent = 'Reconnecting…';
    else state.textContent = '';
  };
  // The link's expiry, for the badge's tooltip; the page works without it.
  requestJson<{ share?: { role: string; expiresAt: string } }>(`/api/workspaces/${encodeURIComponent(workspace)}/terminals/${encodeURIComponent(terminalId)}`, { redirectOn401: false })
    .then((info) => {
      if (info.share) expiry.textContent = `link expires ${new Date(info.share.expiresAt).toLocaleString()}`;
    })
    .catch(() => undefined);
  const session = new TerminalSession(host, (size) => buildAttachUrl(workspace, terminalId, size), onState);
  session.focus();
  window.addEventListener('pagehide', () => session.destroy());
}
