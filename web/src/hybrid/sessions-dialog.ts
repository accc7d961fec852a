import { describeError, requestJson } from '../lib/api.ts';
import { confirmAction, openModal } from '../lib/dialog.ts';
import { clearElement, h } from '../lib/dom.ts';
import { formatDuration } from '../lib/format.ts';
import { showToast } from '../lib/toast.ts';

/** A live session key as `GET /api/workspaces/:id/session-keys` lists it. */
type SessionKey = { id: string; label: string; forward: string[]; reverse: number[]; addedAt: string; expiresAt?: string; connections: number };

const keysPath = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}/session-keys`;

/** What a session's key allows, in words: its forward targets and reverse ports. */
function describeRules(key: SessionKey): string {
  const parts = [...key.forward.map((target) => `forward → ${target}`), ...key.reverse.map((port) => `reverse workspace:${port}`)];
  return parts.length > 0 ? parts.join(', ') : 'SSH only (no tunnels)';
}

/**
 * The workspace's live helper sessions (`wharf up` links, `wharf ssh`, `wharf proxy`): who (the
 * label the helper gave), which rules, since when, how many connections; "End" revokes the key,
 * which also closes its connections (a `wharf up` then says so and tries to reconnect).
 */
export function openSessionsDialog(workspace: string): Promise<void> {
  return openModal<void>(
    'Helper sessions',
    (settle) => {
      const list = h('div', { class: 'session-list', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
      const render = async () => {
        let keys: SessionKey[];
        try {
          keys = (await requestJson<{ keys: SessionKey[] }>(keysPath(workspace))).keys;
        } catch (err) {
          clearElement(list);
          list.append(h('p', { class: 'form-error', role: 'alert' }, describeError(err)));
          return;
        }
        clearElement(list);
        if (keys.length === 0) {
          list.append(h('p', { class: 'muted' }, 'No helper is connected. Run wharf up <name> in a project folder to bridge a local service into this workspace.'));
          return;
        }
        for (const key of keys) {
          const end: HTMLButtonElement = h(
            'button',
            {
              class: 'danger small',
              onclick: async () => {
                if (!(await confirmAction('End session', `End "${key.label}"? Its connections close now.`, 'End session'))) return;
                end.disabled = true;
                try {
                  await requestJson<void>(`${keysPath(workspace)}/${encodeURIComponent(key.id)}`, { method: 'DELETE' });
                  showToast(`Ended "${key.label}"`);
                } catch (err) {
                  showToast(describeError(err), 'error');
                }
                await render();
              },
            },
            'End',
          );
          list.append(
            h(
              'div',
              { class: 'session-row', 'data-key': key.id },
              h('div', { class: 'session-label' }, key.label),
              h('div', { class: 'session-rules muted' }, describeRules(key)),
              h('div', { class: 'session-since muted' }, `since ${formatDuration(Date.now() - Date.parse(key.addedAt))} ago · ${key.connections} connection${key.connections === 1 ? '' : 's'}`),
              end,
            ),
          );
        }
      };
      void render();
      return [list, h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => void render() }, 'Refresh'), h('button', { type: 'button', autofocus: true, onclick: () => settle(undefined) }, 'Close'))];
    },
    { className: 'sessions-modal' },
  );
}
