export { createDocFeature, docStateDirOf } from './doc-feature.ts';
export type { DocFeatureOptions } from './doc-feature.ts';
export { asRelayedUpdate, parseDocMessage } from './doc-message.ts';
export type { DocMessage, PeerFailure } from './doc-message.ts';
export { DOC_SUBSYSTEM, ENVELOPE, encodeEnvelope, encodeFannedOut, encodeJsonEnvelope, isFannedOutFrame, readEnvelope } from './envelope.ts';
export type { CloseInstruction, DocRequest, DocServerMessage, DocStateMessage, EnvelopeKind, RelayMembership } from './envelope.ts';
export { TEXT_NAME } from './shared-doc.ts';
