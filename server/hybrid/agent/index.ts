export { createForwardingFeature } from './forwarding-feature.ts';
export type { ForwardingOptions } from './forwarding-feature.ts';
export { createServiceEnvFeature, findServiceProcess } from './service-env.ts';
export type { ServiceEnvOptions } from './service-env.ts';
