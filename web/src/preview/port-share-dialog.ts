import { describeError } from '../lib/api.ts';
import { openModal } from '../lib/dialog.ts';
import { h, renderInto } from '../lib/dom.ts';
import { createPortShare, listPortShares, revokePortShare, type PortShareInfo } from './ports-api.ts';

const EXPIRY_CHOICES: [label: string, seconds: number][] = [
  ['1 hour', 3600],
  ['8 hours', 8 * 3600],
  ['1 day', 24 * 3600],
  ['7 days', 7 * 24 * 3600],
];

function formatTime(value: string): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}

/** Makes share links for one port (public, or for signed-in people), and lists and revokes them. */
export function openPortShareDialog(workspace: string, port: number): Promise<void> {
  return openModal<void>(
    `Share port ${port}`,
    () => {
      const access = h('select', { 'aria-label': 'Who can open it' }, h('option', { value: 'public' }, 'Anyone with the link'), h('option', { value: 'login' }, 'Signed-in people only'));
      const expiry = h('select', { 'aria-label': 'Expires in' }, ...EXPIRY_CHOICES.map(([label, seconds]) => h('option', { value: String(seconds) }, label)));
      const result = h('div', { class: 'share-result' });
      const error = h('div', { class: 'form-error', role: 'alert' });
      const existing = h('ul', { class: 'share-list' });

      async function refreshList(): Promise<void> {
        try {
          const shares = await listPortShares(workspace, port);
          shares.sort((x, y) => Number(Boolean(x.revokedAt)) - Number(Boolean(y.revokedAt)));
          renderInto(existing, ...(shares.length ? shares.map(renderShare) : [h('li', { class: 'muted' }, 'No links.')]));
        } catch (err) {
          renderInto(existing, h('li', { class: 'form-error' }, describeError(err)));
        }
      }

      function renderShare(share: PortShareInfo): HTMLElement {
        const kind = h('span', { class: 'badge' }, share.public ? 'public' : 'sign-in');
        if (share.revokedAt) return h('li', { class: 'revoked', dataset: { share: share.id, revoked: 'true' } }, kind, h('span', { class: 'muted' }, `revoked ${formatTime(share.revokedAt)}`));
        const revoke: HTMLButtonElement = h(
          'button',
          {
            class: 'danger small',
            onclick: async () => {
              revoke.disabled = true;
              try {
                await revokePortShare(workspace, share.id);
              } catch (err) {
                error.textContent = describeError(err);
              }
              await refreshList();
            },
          },
          'Revoke',
        );
        return h('li', { dataset: { share: share.id } }, kind, h('span', { class: 'muted' }, `expires ${formatTime(share.expiresAt)}`), revoke);
      }

      const create: HTMLButtonElement = h('button', { type: 'submit' }, 'Create link');
      const form = h(
        'form',
        {
          class: 'form share-form',
          onsubmit: async (e: Event) => {
            e.preventDefault();
            error.textContent = '';
            create.disabled = true;
            try {
              const share = await createPortShare(workspace, port, access.value === 'public', Number(expiry.value));
              const input = h('input', { type: 'text', readonly: true, value: share.url, class: 'share-url', 'aria-label': 'Share link', onfocus: (ev: Event) => (ev.target as HTMLInputElement).select() });
              renderInto(result, h('p', {}, share.public ? `Anyone with this link can open port ${port} until it expires or is revoked:` : `Signed-in people can open port ${port} with this link:`), h('div', { class: 'share-url-row' }, input));
              await refreshList();
            } catch (err) {
              error.textContent = describeError(err);
            } finally {
              create.disabled = false;
            }
          },
        },
        h('div', { class: 'form-row' }, h('label', {}, 'Access ', access), h('label', {}, 'Expires in ', expiry), create),
        error,
      );
      void refreshList();
      return [form, result, h('h4', {}, 'Links'), existing];
    },
    { className: 'share-dialog' },
  ).then(() => undefined);
}
