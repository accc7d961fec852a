// The agent's half of previews: which TCP ports the workspace listens on. Only server/agent-main.ts wires it.
export { createPortsFeature } from './ports-feature.ts';
export type { PortsFeature, PortsFeatureOptions } from './ports-feature.ts';
export { scanListeningPorts } from './listening-ports.ts';
