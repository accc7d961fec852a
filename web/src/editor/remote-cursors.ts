import type { Awareness } from 'y-protocols/awareness';

/**
 * y-monaco marks remote selections with per-client class names; the colours and the name
 * flag come from one stylesheet rebuilt from the awareness states.
 */
const rules = new Map<number, string>();
let sheet: HTMLStyleElement | undefined;

function escapeCssString(value: string): string {
  return value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\n\r\f]/g, ' ');
}

function safeColor(value: unknown): string {
  return typeof value === 'string' && /^#[0-9a-f]{3,8}$/i.test(value) ? value : '#61afef';
}

export function updateRemoteCursorStyles(awareness: Awareness): void {
  awareness.getStates().forEach((state, clientId) => {
    if (clientId === awareness.clientID) return;
    const user = (state as { user?: { name?: unknown; color?: unknown } }).user;
    const name = typeof user?.name === 'string' ? user.name.slice(0, 40) : 'someone';
    const color = safeColor(user?.color);
    rules.set(
      clientId,
      `.yRemoteSelection-${clientId}{background-color:${color}40}` +
        `.yRemoteSelectionHead-${clientId}{border-left:2px solid ${color};border-color:${color}}` +
        `.yRemoteSelectionHead-${clientId}::after{content:"${escapeCssString(name)}";background:${color}}`,
    );
  });
  if (!sheet || !sheet.isConnected) {
    sheet = document.createElement('style');
    sheet.dataset.purpose = 'remote-cursors';
    document.head.append(sheet);
  }
  sheet.textContent = [...rules.values()].join('\n');
}
