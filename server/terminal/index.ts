// The shared top of server/terminal: the protocol both processes speak. The agent's half is
// ./agent/index.ts (ptys, headless screens), the control server's ./server/index.ts (hubs, shares).
export { TERMINAL_SUBSYSTEM, TERMINAL_PROTOCOL_BOUNDS } from './protocol.ts';
export type { FanoutSink } from './fanout.ts';
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
