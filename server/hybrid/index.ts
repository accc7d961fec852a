export {
  DEFAULT_FORWARD_HOST,
  checkForwardHost,
  checkForwardPattern,
  grantOfRules,
  matchForwardPattern,
  parseForwardRule,
  parseHybridRules,
  parseReverseRule,
} from './rules.ts';
export type { ForwardRule, HybridRules, ReverseRule, RuleError, RuleGrant } from './rules.ts';
export {
  applyVariablePatch,
  checkSetName,
  checkVariableName,
  developerLayers,
  ENV_LIMITS,
  LOCAL_VARIABLES,
  resolveDeveloperEnvironment,
  resolveEnvironment,
  SERVICE_MARKER,
  SOURCES,
  toProcessEnv,
  validateVariableMap,
  workloadLayers,
  workspaceLayers,
} from './environment.ts';
export type { EnvLayer, NamedSet, ResolvedEnvironment, ResolvedVariable, ServiceProcess } from './environment.ts';
export { HYBRID_SUBSYSTEM } from './protocol.ts';
export type { HybridAgentRequest, HybridServiceEnvReply } from './protocol.ts';
