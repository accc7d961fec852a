export { createForwardingFeature } from './forwarding-feature.ts';
export type { ForwardingOptions } from './forwarding-feature.ts';
