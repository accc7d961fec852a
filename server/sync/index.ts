// The shared top of server/sync: the `wharf-doc` envelope both processes speak and the check of a
// browser's y-websocket message that both apply. The agent's half (documents, disk, watcher) is
// ./agent/index.ts, the control server's (relay groups, the websocket ⇄ channel pump) ./server/index.ts.
export { asRelayedUpdate, parseDocMessage } from './doc-message.ts';
export type { DocMessage, PeerFailure } from './doc-message.ts';
export { DOC_SUBSYSTEM, ENVELOPE, encodeEnvelope, encodeFannedOut, encodeJsonEnvelope, isFannedOutFrame, readEnvelope } from './envelope.ts';
export type { CloseInstruction, DocRequest, DocServerMessage, DocStateMessage, EnvelopeKind, RelayMembership } from './envelope.ts';
