import type { Workspace } from '../../../server/common/index.ts';
import { createWorkspace, deleteWorkspace, describeError, listWorkspaces, request, startWorkspace, stopWorkspace } from '../lib/api.ts';
import { confirmAction } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { buildWorkspacePath } from '../lib/routes.ts';
import { showToast } from '../lib/toast.ts';

const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

export function renderHeader(...right: (Node | string)[]): HTMLElement {
  return h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '/' }, 'wharf'),
    h('div', { class: 'topbar-title' }),
    h('div', { class: 'topbar-actions' }, ...right),
  );
}

export function renderSignOut(): HTMLElement {
  return h(
    'button',
    {
      class: 'secondary small',
      onclick: async () => {
        await request('/api/logout', { method: 'POST' }).catch(() => undefined);
        location.assign('/login');
      },
    },
    'Sign out',
  );
}

/** The home page: every workspace, with create, open, start/stop and delete. */
export async function showWorkspaceList(root: HTMLElement): Promise<void> {
  document.title = 'wharf — workspaces';
  const rows = h('tbody');
  const empty = h('p', { class: 'muted', hidden: true }, 'No workspaces yet. Create one above.');
  const nameInput = h('input', { type: 'text', name: 'name', placeholder: 'new-workspace-name', 'aria-label': 'Workspace name', autocomplete: 'off', spellcheck: false, required: true });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const createButton = h('button', { type: 'submit' }, 'Create workspace');

  async function refresh(): Promise<void> {
    const workspaces = await listWorkspaces();
    workspaces.sort((a, b) => a.name.localeCompare(b.name));
    renderInto(rows, ...workspaces.map(renderRow));
    empty.hidden = workspaces.length > 0;
  }

  async function runAction(button: HTMLButtonElement, action: () => Promise<unknown>): Promise<void> {
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      showToast(describeError(err), 'error');
    } finally {
      button.disabled = false;
      await refresh().catch((err) => showToast(describeError(err), 'error'));
    }
  }

  function renderRow(ws: Workspace): HTMLElement {
    const running = ws.status === 'running';
    const toggle: HTMLButtonElement = h(
      'button',
      { class: 'secondary small', onclick: () => runAction(toggle, () => (running ? stopWorkspace(ws.id) : startWorkspace(ws.id))) },
      running ? 'Stop' : 'Start',
    );
    const remove: HTMLButtonElement = h(
      'button',
      {
        class: 'danger small',
        onclick: async () => {
          if (await confirmAction('Delete workspace', `Delete "${ws.name}" and all of its files? This cannot be undone.`)) await runAction(remove, () => deleteWorkspace(ws.id));
        },
      },
      'Delete',
    );
    return h(
      'tr',
      { dataset: { workspace: ws.id } },
      h('td', {}, h('a', { class: 'workspace-link', href: buildWorkspacePath(ws.id) }, ws.name)),
      h('td', {}, h('span', { class: `badge status-${ws.status}` }, ws.status)),
      h('td', { class: 'muted' }, ws.driver),
      h('td', { class: 'muted' }, new Date(ws.createdAt).toLocaleString()),
      h('td', {}, h('div', { class: 'row-actions' }, h('a', { class: 'button small', href: buildWorkspacePath(ws.id) }, 'Open'), toggle, remove)),
    );
  }

  const form = h(
    'form',
    {
      class: 'create-form',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const name = nameInput.value.trim();
        if (!NAME_PATTERN.test(name)) {
          formError.textContent = 'Use 1-40 characters of a-z, 0-9 and "-", starting and ending with a letter or digit.';
          return;
        }
        formError.textContent = '';
        createButton.disabled = true;
        try {
          const ws = await createWorkspace(name);
          nameInput.value = '';
          showToast(`Workspace "${ws.name}" created.`);
          await refresh();
        } catch (err) {
          formError.textContent = describeError(err);
        } finally {
          createButton.disabled = false;
        }
      },
    },
    nameInput,
    createButton,
  );

  renderInto(
    root,
    h(
      'div',
      { class: 'page' },
      renderHeader(renderSignOut()),
      h(
        'main',
        { class: 'list-page' },
        h('h1', {}, 'Workspaces'),
        form,
        formError,
        h('table', { class: 'workspaces' }, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Driver'), h('th', {}, 'Created'), h('th', {}))), rows),
        empty,
      ),
    ),
  );
  await refresh();
}
