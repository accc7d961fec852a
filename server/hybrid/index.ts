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
