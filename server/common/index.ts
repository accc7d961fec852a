export { WharfError, isWharfError, toWharfError } from './errors.ts';
export type { ErrorCode } from './errors.ts';
export { mapAgentFailure } from './agent-failure.ts';
export type { AgentFailure } from './agent-failure.ts';
export { ok, fail } from './result.ts';
export type { Result } from './result.ts';
export { encodeFrame, createFrameDecoder, FRAME_HEADER_BYTES } from './frame.ts';
export type { FrameDecoderEvents } from './frame.ts';
export { signToken, verifyToken } from './signed-token.ts';
export type { TokenPayload, VerifyFailure } from './signed-token.ts';
export { CLOSE_CODES, DOC_MESSAGE, DOC_TEXT_NAME, TERMINAL_COLORS } from './protocol.ts';
export { isProcessAlive } from './process-alive.ts';
export { isoTimestamp } from './utc-time.ts';
export type {
  Workspace,
  WorkspaceStatus,
  DriverOffer,
  DirectoryEntry,
  DocServerMessage,
  DocStateMessage,
  ExitStatus,
  TerminalClientMessage,
  TerminalInfo,
  TerminalRole,
  TerminalServerMessage,
} from './protocol.ts';
export { containsTerminalQuery, createQueryFilter } from './terminal-queries.ts';
export { createAckWindow } from './ack-window.ts';
export type { AckWindow } from './ack-window.ts';
export { generateKeyPair, parseSshKey, formatPublicKey } from './ssh-keys.ts';
export type { KeyPair } from './ssh-keys.ts';
export { runBridge } from './bridge.ts';
export { pipeDuplex } from './pipe-duplex.ts';
export type { PipeEnd } from './pipe-duplex.ts';
export { createLineSplitter } from './line-splitter.ts';
export type { CommandInfo, DeployEvent, DeployEventInput, DeployKind, DeployMode, DeployPhase, DeployRequest, DeployRun, DeployStatus, FailedCommand } from './deploy-types.ts';
export { wharfVersion, compareVersions } from './version.ts';
export type { ConfigSetInfo, ResolvedEnvironment, ResolvedVariable, SecretSetInfo, ServiceProcess } from './hybrid-env-types.ts';
export { parseResourceBytes, parseWorkspaceResources } from './workspace-resources.ts';
export type { WorkspaceResources } from './workspace-resources.ts';
export { readOrCreateFile } from './create-once.ts';
