// The shared top of server/preview: workspace ports in the browser. The agent's half
// (./agent/index.ts) lists listening ports; the control server's (./server/index.ts) proxies
// previews over direct-tcpip channels and keeps share links.
export { PORTS_SUBSYSTEM, PORT_RANGE } from './protocol.ts';
export type { ListeningPort, PortsMessage } from './protocol.ts';
export { formatPreviewHost, parsePreviewHost, parsePortNumber } from './preview-host.ts';
