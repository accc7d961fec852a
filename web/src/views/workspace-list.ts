import type { DriverOffer, Workspace, WorkspaceResources } from '../../../server/common/index.ts';
import { createWorkspace, deleteWorkspace, describeError, listDrivers, listWorkspaces, request, startWorkspace, stopWorkspace, type CreateOptions } from '../lib/api.ts';
import { formatBytes } from '../lib/format.ts';
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

/** "2 CPUs · 2.0 GiB · 512 pids": a workspace's limits in one cell ("—" when it has none). */
export function describeResources(resources: WorkspaceResources | undefined): string {
  if (!resources) return '—';
  const parts = [
    resources.cpus !== undefined ? `${resources.cpus} CPU${resources.cpus === 1 ? '' : 's'}` : '',
    resources.memory !== undefined ? `${formatBytes(resources.memory)} memory` : '',
    resources.pids !== undefined ? `${resources.pids} processes` : '',
    resources.disk !== undefined ? `${formatBytes(resources.disk)} disk` : '',
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(' · ') : '—';
}

/**
 * The create form's driver part: a choice of the server's drivers (only when it has several),
 * and the fields the chosen one takes (an image, limits), prefilled with its defaults as hints.
 */
function renderDriverFields(offers: DriverOffer[]): { element: HTMLElement; read(): CreateOptions | string } {
  const select = h('select', { name: 'driver', 'aria-label': 'Driver', hidden: offers.length < 2 }, ...offers.map((o) => h('option', { value: o.kind, selected: o.default }, o.kind)));
  const image = h('input', { type: 'text', name: 'image', 'aria-label': 'Image', autocomplete: 'off', spellcheck: false });
  const cpus = h('input', { type: 'text', name: 'cpus', 'aria-label': 'CPUs', inputmode: 'decimal', size: 5 });
  const memory = h('input', { type: 'text', name: 'memory', 'aria-label': 'Memory', size: 6 });
  const pids = h('input', { type: 'text', name: 'pids', 'aria-label': 'Processes', inputmode: 'numeric', size: 6 });
  const imageField = h('label', { class: 'inline-field' }, 'Image', image);
  const limitFields = h('span', { class: 'inline-fields' }, h('label', { class: 'inline-field' }, 'CPUs', cpus), h('label', { class: 'inline-field' }, 'Memory', memory), h('label', { class: 'inline-field' }, 'Processes', pids));
  const chosen = () => offers.find((o) => o.kind === select.value) ?? offers[0];
  const sync = () => {
    const offer = chosen();
    imageField.hidden = offer?.image === undefined;
    image.placeholder = offer?.image ?? '';
    limitFields.hidden = offer?.resources === undefined;
    const r = offer?.resources ?? {};
    cpus.placeholder = r.cpus !== undefined ? String(r.cpus) : 'any';
    memory.placeholder = r.memory !== undefined ? formatBytes(r.memory) : 'e.g. 2g';
    pids.placeholder = r.pids !== undefined ? String(r.pids) : 'any';
  };
  select.addEventListener('change', sync);
  sync();
  return {
    element: h('div', { class: 'driver-fields' }, select, imageField, limitFields),
    /** The options to send, or what is wrong with them. */
    read() {
      const offer = chosen();
      const options: CreateOptions = {};
      if (offers.length > 1 && offer) options.driver = offer.kind;
      if (offer?.image !== undefined && image.value.trim()) options.image = image.value.trim();
      if (offer?.resources !== undefined) {
        const resources: NonNullable<CreateOptions['resources']> = {};
        if (cpus.value.trim()) {
          const n = Number(cpus.value.trim());
          if (!Number.isFinite(n) || n <= 0) return 'CPUs must be a number above 0, e.g. 1.5.';
          resources.cpus = n;
        }
        if (memory.value.trim()) resources.memory = memory.value.trim();
        if (pids.value.trim()) {
          const n = Number(pids.value.trim());
          if (!Number.isInteger(n) || n <= 0) return 'Processes must be a whole number above 0.';
          resources.pids = n;
        }
        if (Object.keys(resources).length > 0) options.resources = resources;
      }
      return options;
    },
  };
}

/** The home page: every workspace, with create, open, start/stop and delete. */
export async function showWorkspaceList(root: HTMLElement): Promise<void> {
  document.title = 'wharf — workspaces';
  const rows = h('tbody');
  const empty = h('p', { class: 'muted', hidden: true }, 'No workspaces yet. Create one above.');
  const nameInput = h('input', { type: 'text', name: 'name', placeholder: 'new-workspace-name', 'aria-label': 'Workspace name', autocomplete: 'off', spellcheck: false, required: true });
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const createButton = h('button', { type: 'submit' }, 'Create workspace');
  // Without the list the form still creates on the server's default driver.
  const driverFields = renderDriverFields(await listDrivers().catch(() => [] as DriverOffer[]));

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
      h('td', {}, h('span', { class: `badge status-${ws.status}`, title: ws.statusReason }, ws.status), ws.statusReason ? h('div', { class: 'status-reason muted' }, ws.statusReason) : null),
      h('td', { class: 'muted' }, ws.driver),
      h('td', { class: 'muted' }, ws.image ?? '—'),
      h('td', { class: 'muted' }, describeResources(ws.resources)),
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
        const options = driverFields.read();
        if (typeof options === 'string') {
          formError.textContent = options;
          return;
        }
        formError.textContent = '';
        createButton.disabled = true;
        try {
          const ws = await createWorkspace(name, options);
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
    driverFields.element,
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
        h('table', { class: 'workspaces' }, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Driver'), h('th', {}, 'Image'), h('th', {}, 'Resources'), h('th', {}, 'Created'), h('th', {}))), rows),
        empty,
      ),
    ),
  );
  await refresh();
}
