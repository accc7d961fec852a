// The control server's half of shared terminals: requests to the agent, the hubs that fan a
// terminal out to websocket clients, and share links. Only server/main.ts wires it.
export { createTerminalService } from './terminal-service.ts';
export type { TerminalService, TerminalServiceOptions } from './terminal-service.ts';
export type { HubAttachment, HubClient } from './terminal-hub.ts';
export type { ShareRecord, ShareService, VerifiedShare, ShareRefusal } from './shares.ts';
export type { ShareClient } from './share-clients.ts';
