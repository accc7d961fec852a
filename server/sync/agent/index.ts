// The workspace agent's half of live editing: the `wharf-doc` subsystem, the shared documents it
// keeps, their files and the watcher. Only server/agent-main.ts wires it.
export { createDocFeature, docStateDirOf } from './doc-feature.ts';
export type { DocFeatureOptions } from './doc-feature.ts';
