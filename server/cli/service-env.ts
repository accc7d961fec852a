import { fail, ok, type ResolvedEnvironment, type Result } from '../common/index.ts';
import { LOCAL_VARIABLES, resolveDeveloperEnvironment, type ResolvedVariable } from '../hybrid/index.ts';
import type { DevSection } from '../okteto/index.ts';
import type { ApiClient, CliFailure } from './types.ts';

/** Shown in place of a secret's value. */
export const MASK = '••••';

/**
 * A service's whole environment as `wharf up` runs it (docs/hybrid.md): the workspace's layers
 * resolved by the server, the manifest's `environment` over them, the developer's PATH, HOME,
 * TERM and USER over everything. Secret values come from the server only with `includeSecrets`.
 */
export async function resolveServiceEnvironment(
  api: ApiClient,
  input: { workspaceId: string; dev: DevSection; localEnvironment: Record<string, string>; includeSecrets: boolean },
): Promise<Result<ResolvedEnvironment, CliFailure>> {
  const selector = Object.entries(input.dev.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const query = `service=${encodeURIComponent(input.dev.name)}&secrets=${input.includeSecrets ? 'include' : 'mask'}${selector ? `&selector=${encodeURIComponent(selector)}` : ''}`;
  const answer = await api.json<ResolvedEnvironment>('GET', `/api/workspaces/${encodeURIComponent(input.workspaceId)}/hybrid/env?${query}`);
  if (!answer.ok) return answer;
  if (!Array.isArray(answer.value?.variables)) return fail({ code: 'server', message: `${api.url} answered without a "variables" list: is it older than this helper?` });
  const variables = resolveDeveloperEnvironment({ local: input.localEnvironment, manifest: input.dev.environment, workspace: answer.value.variables });
  return ok({ ...answer.value, variables });
}

/** One line saying where the dev-container layer came from, for stderr. */
export function describeProcess(resolved: ResolvedEnvironment): string {
  const p = resolved.process;
  return p ? `dev container: pid ${p.pid} (${p.command || 'no command line'})` : 'dev container: no process found; that layer is empty';
}

/** A value as a table shows it: control characters escaped, so one variable stays on one line. */
function printable(value: string): string {
  return /[\u0000-\u001f\u007f]/.test(value) ? JSON.stringify(value) : value;
}

/** Rows NAME, SOURCE, VALUE (the value last: it may be long). */
export function formatVariables(variables: ResolvedVariable[], showSecrets: boolean): string[][] {
  return variables.map((v) => [v.name, v.source, v.secret && (!showSecrets || v.value === null) ? MASK : printable(v.value ?? '')]);
}

/** Names an env file leaves to the program that reads it: its own PATH, HOME, TERM and USER. */
const LEFT_TO_READER = new Set<string>(LOCAL_VARIABLES);

/** A value in dotenv syntax as IDEs read it (VS Code's envFile, JetBrains' EnvFile, the dotenv package). */
function dotenvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@%+,=-]*$/.test(value)) return value;
  if (!value.includes("'") && !/[\r\n]/.test(value)) return `'${value}'`;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '\\r').replace(/\n/g, '\\n')}"`;
}

/** The env file `wharf up --write-env-file` writes: every resolved variable but PATH, HOME, TERM and USER. */
export function formatEnvFile(resolved: ResolvedEnvironment, workspaceId: string): string {
  const lines = [`# The environment of dev.${resolved.service} in workspace "${workspaceId}", written by wharf up. It holds secrets: keep it out of version control.`];
  for (const v of resolved.variables) {
    if (LEFT_TO_READER.has(v.name) || v.value === null) continue;
    lines.push(`${v.name}=${dotenvValue(v.value)}`);
  }
  return `${lines.join('\n')}\n`;
}
