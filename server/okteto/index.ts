/**
 * What the wharf helper (CLI), the workspace agent and the control server all need of Okteto's
 * formats: the manifest (`okteto.yml`), `.oktetoignore`, the decisions a manifest implies
 * (remote or local, variables, paths), and packing a context folder for the builder. Pure
 * functions and a packer over the local disk: no process half of its own, so the helper can
 * load it without the agent's or the server's code.
 */
export { parseManifest, MANIFEST_NAMES, DEFAULT_MANIFEST_LIMITS } from './manifest.ts';
export type { DevSection } from './dev-section.ts';
export type { Manifest, ManifestSection, ManifestCommand, ManifestError, ManifestLimits, ParsedManifest } from './manifest.ts';
export { parseIgnoreFile, patternsFor, createIgnoreMatcher } from './ignore-rules.ts';
export type { IgnoreFile, IgnoreMatcher, IgnoreError } from './ignore-rules.ts';
export { decideMode, mergeVariables, parseVariableAssignments, validateVariables, validateRelativePath } from './plan.ts';
export type { ModeDecision } from './plan.ts';
export { resolveInside, createHostResolver } from './inside-root.ts';
export type { PathResolver } from './inside-root.ts';
export { packContext, DEFAULT_PACK_LIMITS, CONTEXT_PREFIX } from './pack.ts';
export type { PackSummary, PackOptions, PackedContext } from './pack.ts';
export { UPLOAD_CONTENT_TYPE, encodeUploadHeader, readUploadHeader, validateUploadOptions } from './upload-format.ts';
export type { UploadOptions, ValidUpload } from './upload-format.ts';
