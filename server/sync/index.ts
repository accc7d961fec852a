export { createDocFeature, docStateDirOf } from './doc-feature.ts';
export type { DocFeatureOptions } from './doc-feature.ts';
export { DOC_SUBSYSTEM, ENVELOPE, encodeEnvelope, encodeJsonEnvelope, readEnvelope } from './envelope.ts';
export type { CloseInstruction, DocRequest, DocServerMessage, DocStateMessage, EnvelopeKind } from './envelope.ts';
export { TEXT_NAME } from './shared-doc.ts';
