import { fail, ok, type Result } from '../common/index.ts';

/**
 * Hybrid mode's port rules, shared by the helper (which listens and dials on the developer's
 * machine), the server (which turns them into a session key's grant) and the agent (which
 * enforces the grant). Forms follow the Okteto manifest's `dev.<name>.forward` / `reverse`.
 */

/** Listen on the developer's machine at `localPort`; each connection is dialled in the workspace to `host:remotePort`. */
export type ForwardRule = { localPort: number; host: string; remotePort: number };
/** The agent listens in the workspace on `remotePort`; each connection reaches the developer's `localPort`. */
export type ReverseRule = { remotePort: number; localPort: number };
export type HybridRules = { forward: ForwardRule[]; reverse: ReverseRule[] };
/** One mistake: which list, which entry (0-based), and what was expected. */
export type RuleError = { field: 'forward' | 'reverse'; index: number; message: string };
/** What a session key may do: the agent allows exactly these. */
export type RuleGrant = { forward: string[]; reverse: number[] };

/** The host a bare `local:remote` forward dials inside the workspace. */
export const DEFAULT_FORWARD_HOST = 'localhost';
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;

function parsePort(value: unknown, what: string): Result<number, string> {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : '';
  if (!/^\d{1,5}$/.test(text)) return fail(`${what} must be a port number (1-65535), not ${JSON.stringify(value)}`);
  const port = Number(text);
  if (port < 1 || port > 65535) return fail(`${what} ${port} is out of range (1-65535)`);
  return ok(port);
}

/** A host a forward may name: a service (DNS label, as Kubernetes names services), `localhost` or an IPv4 address. */
export function checkForwardHost(host: string): string | undefined {
  if (host === 'localhost' || IPV4.test(host) || DNS_LABEL.test(host)) return undefined;
  return `service name ${JSON.stringify(host)} is not a valid DNS label (lower-case letters, digits and '-', at most 63)`;
}

/** `"local:remote"`, `"local:service:remote"` or `{ localPort, remotePort, name }`. */
export function parseForwardRule(value: unknown): Result<ForwardRule, string> {
  const expected = 'expected "local:remote", "local:service:remote" or { localPort, remotePort, name }';
  let local: unknown;
  let host: unknown = DEFAULT_FORWARD_HOST;
  let remote: unknown;
  if (typeof value === 'string' || typeof value === 'number') {
    const parts = String(value).split(':');
    if (parts.length === 2) [local, remote] = parts;
    else if (parts.length === 3) [local, host, remote] = parts;
    else return fail(`${JSON.stringify(value)}: ${expected}`);
  } else if (value && typeof value === 'object' && !Array.isArray(value)) {
    const rule = value as Record<string, unknown>;
    const unknownKeys = Object.keys(rule).filter((k) => !['localPort', 'remotePort', 'name'].includes(k));
    if (unknownKeys.length > 0) return fail(`unknown key ${JSON.stringify(unknownKeys[0])}: ${expected}`);
    local = rule.localPort;
    remote = rule.remotePort;
    if (rule.name !== undefined) host = rule.name;
  } else return fail(`${JSON.stringify(value)}: ${expected}`);
  const localPort = parsePort(local, 'the local port');
  if (!localPort.ok) return localPort;
  const remotePort = parsePort(remote, 'the remote port');
  if (!remotePort.ok) return remotePort;
  if (typeof host !== 'string') return fail(`the service name must be a string: ${expected}`);
  const hostError = checkForwardHost(host);
  if (hostError) return fail(hostError);
  return ok({ localPort: localPort.value, host, remotePort: remotePort.value });
}

/** `"remote:local"`: the workspace's port first, as in `ssh -R`. */
export function parseReverseRule(value: unknown): Result<ReverseRule, string> {
  const expected = 'expected "remote:local" (the port in the workspace first, then the one on your machine)';
  if (typeof value !== 'string') return fail(`${JSON.stringify(value)}: ${expected}`);
  const parts = value.split(':');
  if (parts.length !== 2) {
    if (parts.length === 3) return fail(`${JSON.stringify(value)}: a reverse rule names no service; ${expected}`);
    return fail(`${JSON.stringify(value)}: ${expected}`);
  }
  const remotePort = parsePort(parts[0], 'the remote port');
  if (!remotePort.ok) return fail(`${remotePort.error}; ${expected}`);
  const localPort = parsePort(parts[1], 'the local port');
  if (!localPort.ok) return fail(`${localPort.error}; ${expected}`);
  return ok({ remotePort: remotePort.value, localPort: localPort.value });
}

/**
 * Both lists, every mistake reported (not only the first). Two forwards on one local port, or
 * two reverses on one workspace port, cannot both listen: refused.
 */
export function parseHybridRules(input: { forward?: unknown; reverse?: unknown }): Result<HybridRules, RuleError[]> {
  const errors: RuleError[] = [];
  const rules: HybridRules = { forward: [], reverse: [] };
  const listOf = (field: 'forward' | 'reverse', value: unknown): unknown[] => {
    if (value === undefined || value === null) return [];
    if (Array.isArray(value)) return value;
    errors.push({ field, index: 0, message: `${field} must be a list of rules` });
    return [];
  };
  const localPorts = new Map<number, number>();
  listOf('forward', input.forward).forEach((value, index) => {
    const rule = parseForwardRule(value);
    if (!rule.ok) return errors.push({ field: 'forward', index, message: rule.error });
    const earlier = localPorts.get(rule.value.localPort);
    if (earlier !== undefined) return errors.push({ field: 'forward', index, message: `local port ${rule.value.localPort} is already used by forward rule ${earlier + 1}` });
    localPorts.set(rule.value.localPort, index);
    rules.forward.push(rule.value);
  });
  const remotePorts = new Map<number, number>();
  listOf('reverse', input.reverse).forEach((value, index) => {
    const rule = parseReverseRule(value);
    if (!rule.ok) return errors.push({ field: 'reverse', index, message: rule.error });
    const earlier = remotePorts.get(rule.value.remotePort);
    if (earlier !== undefined) return errors.push({ field: 'reverse', index, message: `workspace port ${rule.value.remotePort} is already used by reverse rule ${earlier + 1}` });
    remotePorts.set(rule.value.remotePort, index);
    rules.reverse.push(rule.value);
  });
  return errors.length > 0 ? fail(errors) : ok(rules);
}

/** Exactly what the rules need from the agent, and nothing more. */
export function grantOfRules(rules: HybridRules): RuleGrant {
  return {
    forward: [...new Set(rules.forward.map((r) => `${r.host}:${r.remotePort}`))],
    reverse: [...new Set(rules.reverse.map((r) => r.remotePort))],
  };
}

/** Hosts that mean the workspace's own loopback, so `localhost:3000` also allows `127.0.0.1:3000`. */
function sameHost(a: string, b: string): boolean {
  const loopback = (h: string) => h === 'localhost' || h === '127.0.0.1' || h === '::1';
  return a.toLowerCase() === b.toLowerCase() || (loopback(a) && loopback(b));
}

/** A grant's forward pattern: `*` (the server's own key), `host:port` or `host:*`. */
export function matchForwardPattern(pattern: string, host: string, port: number): boolean {
  if (pattern === '*') return true;
  const at = pattern.lastIndexOf(':');
  if (at <= 0) return false;
  const [patternHost, patternPort] = [pattern.slice(0, at), pattern.slice(at + 1)];
  return sameHost(patternHost, host) && (patternPort === '*' || patternPort === String(port));
}

/** A pattern a session key may be given (the route checks them): `host:port` only; `*` is the server's own. */
export function checkForwardPattern(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return 'each forward target must be a "host:port" string';
  const at = pattern.lastIndexOf(':');
  if (at <= 0) return `forward target ${JSON.stringify(pattern)} must be "host:port"`;
  const hostError = checkForwardHost(pattern.slice(0, at));
  if (hostError) return `forward target ${JSON.stringify(pattern)}: ${hostError}`;
  const port = parsePort(pattern.slice(at + 1), 'its port');
  return port.ok ? undefined : `forward target ${JSON.stringify(pattern)}: ${port.error}`;
}
