import { describeError } from '../lib/api.ts';
import { h, renderInto } from '../lib/dom.ts';
import { showToast } from '../lib/toast.ts';
import { openPortShareDialog } from './port-share-dialog.ts';
import { portEventsUrl, type PortInfo } from './ports-api.ts';

export type PortsPanel = { element: HTMLElement; start(): void; shown(): void; dispose(): void };

/** Where Open goes: the port's own origin when the server has a preview domain (apps expect a root), else the path. */
function openUrl(port: PortInfo): string {
  return port.urls.host ?? new URL(port.urls.path, location.href).toString();
}

const RECONNECT_MS = 2000;

/**
 * The Ports panel: the workspace's listening ports as the server pushes them (one websocket; the
 * server holds one subscription to the agent for every browser), each with its process, an Open
 * link and a Share button; a port that appears while the page is open is announced.
 */
export function createPortsPanel(workspace: string, options: { onCount?: (count: number) => void } = {}): PortsPanel {
  const list = h('ul', { class: 'ports-list' });
  const status = h('p', { class: 'muted ports-status' }, 'Looking for listening ports…');
  const element = h('div', { class: 'ports-panel', hidden: true }, status, list);
  let known: Set<number> | undefined;
  let socket: WebSocket | undefined;
  let disposed = false;
  let retry: ReturnType<typeof setTimeout> | undefined;

  function render(ports: PortInfo[]): void {
    status.textContent = ports.length === 0 ? 'Nothing in the workspace listens on a TCP port yet. Start a dev server and it shows up here.' : '';
    status.hidden = ports.length > 0;
    renderInto(
      list,
      ...ports.map((p) =>
        h(
          'li',
          { class: 'port-row', dataset: { port: String(p.port) } },
          h('span', { class: 'port-number' }, String(p.port)),
          h('span', { class: 'port-process', title: p.pid ? `pid ${p.pid}` : '' }, p.process ?? 'unknown process'),
          h('span', { class: 'muted port-addresses' }, p.addresses.join(', ')),
          h('a', { class: 'button small', href: openUrl(p), target: '_blank', rel: 'noopener' }, 'Open'),
          h('button', { class: 'secondary small', onclick: () => void openPortShareDialog(workspace, p.port) }, 'Share'),
        ),
      ),
    );
    options.onCount?.(ports.length);
  }

  function announce(ports: PortInfo[]): void {
    const now = new Set(ports.map((p) => p.port));
    // The first list is what was already there; only ports that open afterwards are news.
    if (known) {
      for (const p of ports) {
        if (known.has(p.port)) continue;
        showToast(h('span', {}, `port ${p.port} is now listening — `, h('a', { href: openUrl(p), target: '_blank', rel: 'noopener' }, 'open preview')), 'info', 15_000);
      }
    }
    known = now;
  }

  function connect(): void {
    if (disposed) return;
    const ws = new WebSocket(portEventsUrl(workspace));
    socket = ws;
    ws.onmessage = (event) => {
      try {
        const message = JSON.parse(String(event.data)) as { type: string; ports: PortInfo[] };
        if (message.type !== 'ports') return;
        announce(message.ports);
        render(message.ports);
      } catch (err) {
        status.textContent = `Could not read the port list: ${describeError(err)}`;
      }
    };
    ws.onclose = (event) => {
      if (disposed) return;
      status.hidden = false;
      status.textContent = `Port list disconnected${event.reason ? ` (${event.reason})` : ''}; reconnecting…`;
      retry = setTimeout(connect, RECONNECT_MS);
    };
  }

  return {
    element,
    start: connect,
    shown() {},
    dispose() {
      disposed = true;
      clearTimeout(retry);
      socket?.close();
    },
  };
}
