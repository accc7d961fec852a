import { fail, ok, type DeployMode, type Result } from '../common/index.ts';
import type { ManifestSection } from './manifest.ts';

export type ModeDecision = { mode: DeployMode; reason: string };

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_VARIABLES = 500;
const MAX_VARIABLE_BYTES = 256 * 1024;

/** Go's strconv.ParseBool "true" spellings, which Okteto uses for OKTETO_FORCE_REMOTE. */
function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value.trim());
}

/**
 * Remote when the caller asks (`--remote`), the manifest says `remote: true` or names an
 * `image`, or `OKTETO_FORCE_REMOTE` is true in the caller's variables or the admin variables.
 * An explicit `--remote=false` or `remote: false` turns it off, whatever forces it otherwise.
 */
export function decideMode(input: {
  section: ManifestSection;
  remoteFlag: boolean | undefined;
  callerVariables: Record<string, string>;
  adminVariables: Record<string, string>;
}): ModeDecision {
  const { section, remoteFlag } = input;
  if (remoteFlag === false) return { mode: 'local', reason: 'remote execution was turned off by the caller (--remote=false)' };
  if (remoteFlag === true) return { mode: 'remote', reason: 'the caller asked for remote execution (--remote)' };
  if (section.remote === false) return { mode: 'local', reason: 'the manifest says "remote: false"' };
  if (section.remote === true) return { mode: 'remote', reason: 'the manifest says "remote: true"' };
  if (section.image) return { mode: 'remote', reason: `the manifest names a runner image (${section.image})` };
  if (isTrue(input.callerVariables.OKTETO_FORCE_REMOTE)) return { mode: 'remote', reason: 'OKTETO_FORCE_REMOTE is set by the caller' };
  if (isTrue(input.adminVariables.OKTETO_FORCE_REMOTE)) return { mode: 'remote', reason: 'OKTETO_FORCE_REMOTE is set by the server administrator' };
  return { mode: 'local', reason: 'nothing asks for remote execution' };
}

/** Admin variables go into every deploy; a caller's variable of the same name wins. */
export function mergeVariables(admin: Record<string, string>, caller: Record<string, string>): Record<string, string> {
  return { ...admin, ...caller };
}

/** Checks untrusted `variables` input: an object of string values with shell-safe names. */
export function validateVariables(input: unknown): Result<Record<string, string>, string> {
  if (input === undefined || input === null) return ok({});
  if (typeof input !== 'object' || Array.isArray(input)) return fail('"variables" must be an object of NAME: "value" pairs');
  const out: Record<string, string> = {};
  let bytes = 0;
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > MAX_VARIABLES) return fail(`too many variables (${entries.length}; at most ${MAX_VARIABLES})`);
  for (const [name, value] of entries) {
    if (!VARIABLE_NAME.test(name)) return fail(`variable name "${name.slice(0, 64)}" is not valid: use letters, digits and "_", not starting with a digit`);
    if (typeof value !== 'string') return fail(`variable ${name} must be a string`);
    if (value.includes('\0')) return fail(`variable ${name} contains a NUL byte`);
    bytes += name.length + Buffer.byteLength(value);
    out[name] = value;
  }
  if (bytes > MAX_VARIABLE_BYTES) return fail(`variables are too large (${bytes} bytes; at most ${MAX_VARIABLE_BYTES})`);
  return ok(out);
}

/** `K=V` strings (CLI `--var`) into variables. */
export function parseVariableAssignments(list: string[]): Result<Record<string, string>, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) return fail(`expected NAME=value, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return validateVariables(out);
}

/** A relative path inside the workspace or context: no absolute paths, no `..`, POSIX form. */
export function validateRelativePath(input: string, what: string): Result<string, string> {
  const trimmed = input.trim();
  if (!trimmed) return fail(`${what} is empty`);
  if (trimmed.startsWith('/') || trimmed.includes('\\') || trimmed.includes('\0')) return fail(`${what} must be a relative path inside the workspace, got "${trimmed}"`);
  const parts = trimmed.split('/').filter((p) => p && p !== '.');
  if (parts.some((p) => p === '..')) return fail(`${what} must stay inside the workspace ("..") is not allowed, got "${trimmed}"`);
  return ok(parts.join('/') || '.');
}
