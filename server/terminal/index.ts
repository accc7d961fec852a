export { createTerminalFeature, TERMINAL_SUBSYSTEM } from './terminal-feature.ts';
export type { TerminalFeatureOptions } from './terminal-feature.ts';
export { createTerminalService } from './terminal-service.ts';
export type { TerminalService, TerminalServiceOptions } from './terminal-service.ts';
export type { HubAttachment, HubClient } from './terminal-hub.ts';
export type { FanoutSink } from './fanout.ts';
export type { ShareRecord, ShareService, VerifiedShare, ShareRefusal } from './shares.ts';
export type {
  AttachPrincipal,
  ClientToServerMessage,
  CreateTerminalRequest,
  ExitStatus,
  ServerToClientMessage,
  Snapshot,
  StreamEvent,
  TerminalInfo,
  TerminalRole,
} from './protocol.ts';
