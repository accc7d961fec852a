import { describeError } from '../lib/api.ts';
import { openModal } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { createShare, listShares, revokeShare, type ShareInfo } from './terminals-api.ts';

const EXPIRY_CHOICES: [label: string, seconds: number][] = [
  ['1 hour', 3600],
  ['8 hours', 8 * 3600],
  ['1 day', 24 * 3600],
  ['7 days', 7 * 24 * 3600],
];

function formatExpiry(value: string): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

async function copyText(text: string, button: HTMLButtonElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    // Clipboard access needs a secure context; the link is selectable anyway.
    button.textContent = 'Select and copy';
  }
  setTimeout(() => (button.textContent = 'Copy'), 2000);
}

/** Makes editor/viewer links for one terminal, and lists and revokes the existing ones. */
export function openShareDialog(workspace: string, terminalId: string, terminalLabel: string): Promise<void> {
  return openModal<void>(
    `Share ${terminalLabel}`,
    () => {
      const role = h('select', { 'aria-label': 'Role' }, h('option', { value: 'viewer' }, 'Viewer — can watch'), h('option', { value: 'editor' }, 'Editor — can type'));
      const expiry = h('select', { 'aria-label': 'Expires in' }, ...EXPIRY_CHOICES.map(([label, seconds]) => h('option', { value: String(seconds) }, label)));
      const result = h('div', { class: 'share-result' });
      const error = h('div', { class: 'form-error', role: 'alert' });
      const existing = h('ul', { class: 'share-list' });

      async function refreshList(): Promise<void> {
        try {
          const shares = await listShares(workspace, terminalId);
          // Revoked links stay listed (until they would have expired) below the live ones.
          shares.sort((x, y) => Number(Boolean(x.revokedAt)) - Number(Boolean(y.revokedAt)));
          renderInto(existing, ...(shares.length ? shares.map(renderShare) : [h('li', { class: 'muted' }, 'No links.')]));
        } catch (err) {
          renderInto(existing, h('li', { class: 'form-error' }, describeError(err)));
        }
      }

      function renderShare(share: ShareInfo): HTMLElement {
        if (share.revokedAt) {
          return h('li', { class: 'revoked', dataset: { share: share.id, revoked: 'true' } }, h('span', { class: `badge role-${share.role}` }, share.role), h('span', { class: 'muted' }, `revoked ${formatExpiry(share.revokedAt)}`));
        }
        const revoke: HTMLButtonElement = h(
          'button',
          {
            class: 'danger small',
            onclick: async () => {
              revoke.disabled = true;
              try {
                await revokeShare(workspace, terminalId, share.id);
              } catch (err) {
                error.textContent = describeError(err);
              }
              await refreshList();
            },
          },
          'Revoke',
        );
        const url = share.url ? new URL(share.url, location.href).toString() : undefined;
        const copy: HTMLButtonElement | undefined = url ? h('button', { type: 'button', class: 'secondary small', onclick: () => copyText(url, copy!) }, 'Copy') : undefined;
        return h('li', { dataset: { share: share.id } }, h('span', { class: `badge role-${share.role}` }, share.role), h('span', { class: 'muted' }, `expires ${formatExpiry(share.expiresAt)}`), copy, revoke);
      }

      const create: HTMLButtonElement = h(
        'button',
        {
          type: 'submit',
        },
        'Create link',
      );
      const form = h(
        'form',
        {
          class: 'form share-form',
          onsubmit: async (e: Event) => {
            e.preventDefault();
            error.textContent = '';
            create.disabled = true;
            try {
              const share = await createShare(workspace, terminalId, role.value as 'editor' | 'viewer', Number(expiry.value));
              const url = new URL(share.url, location.href).toString();
              const input = h('input', { type: 'text', readonly: true, value: url, class: 'share-url', 'aria-label': 'Share link', onfocus: (ev: Event) => (ev.target as HTMLInputElement).select() });
              const copy: HTMLButtonElement = h('button', { type: 'button', class: 'secondary small', onclick: () => copyText(url, copy) }, 'Copy');
              renderInto(result, h('p', {}, `Anyone with this ${share.role} link can ${share.role === 'editor' ? 'type into' : 'watch'} this terminal until it expires or is revoked:`), h('div', { class: 'share-url-row' }, input, copy));
              await refreshList();
            } catch (err) {
              error.textContent = describeError(err);
            } finally {
              create.disabled = false;
            }
          },
        },
        h('div', { class: 'form-row' }, h('label', {}, 'Role ', role), h('label', {}, 'Expires in ', expiry), create),
        error,
      );
      void refreshList();
      return [form, result, h('h4', {}, 'Links'), existing];
    },
    { className: 'share-dialog' },
  ).then(() => undefined);
}
