// The workspace agent's half of shared terminals: the `wharf-terminal` subsystem, its ptys and
// headless screens. Only server/agent-main.ts wires it.
export { createTerminalFeature } from './terminal-feature.ts';
export type { TerminalFeatureOptions } from './terminal-feature.ts';
