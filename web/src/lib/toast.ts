import { h } from './dom.ts';

let container: HTMLElement | undefined;

/** A short message in the corner; errors stay until dismissed, others fade after a while. */
export function showToast(message: string | Node, kind: 'info' | 'error' | 'warning' = 'info', timeoutMs = 6000): void {
  if (!container || !container.isConnected) {
    container = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(container);
  }
  const toast = h('div', { class: `toast ${kind}` }, h('span', {}, message), h('button', { class: 'icon', title: 'Dismiss', onclick: () => toast.remove() }, '×'));
  container.append(toast);
  if (kind !== 'error') setTimeout(() => toast.remove(), timeoutMs);
}
