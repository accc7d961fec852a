import type { ConfigSetInfo, SecretSetInfo } from '../../../server/common/index.ts';
import { requestJson } from '../lib/api.ts';

/** Wire types of docs/hybrid.md, as the server defines them. */
export type { ConfigSetInfo, SecretSetInfo } from '../../../server/common/index.ts';

export type SetKind = 'config' | 'secret';

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}`;
const setsPath = (workspace: string, kind: SetKind) => `${base(workspace)}/${kind}-sets`;

export async function getWorkspaceEnv(workspace: string): Promise<Record<string, string>> {
  return (await requestJson<{ variables: Record<string, string> }>(`${base(workspace)}/env`)).variables;
}

export async function putWorkspaceEnv(workspace: string, variables: Record<string, string>): Promise<Record<string, string>> {
  return (await requestJson<{ variables: Record<string, string> }>(`${base(workspace)}/env`, { method: 'PUT', json: { variables } })).variables;
}

export async function listConfigSets(workspace: string): Promise<ConfigSetInfo[]> {
  return (await requestJson<{ sets: ConfigSetInfo[] }>(setsPath(workspace, 'config'))).sets;
}

export async function listSecretSets(workspace: string): Promise<SecretSetInfo[]> {
  return (await requestJson<{ sets: SecretSetInfo[] }>(setsPath(workspace, 'secret'))).sets;
}

/** Replaces a config set's variables (creating it). */
export function putConfigSet(workspace: string, name: string, variables: Record<string, string>): Promise<ConfigSetInfo> {
  return requestJson<ConfigSetInfo>(`${setsPath(workspace, 'config')}/${encodeURIComponent(name)}`, { method: 'PUT', json: { variables } });
}

/** Changes some keys of a secret set (null removes one), keeping the values it does not name: they cannot be read back. */
export function patchSecretSet(workspace: string, name: string, variables: Record<string, string | null>): Promise<SecretSetInfo> {
  return requestJson<SecretSetInfo>(`${setsPath(workspace, 'secret')}/${encodeURIComponent(name)}`, { method: 'PATCH', json: { variables } });
}

export function deleteSet(workspace: string, kind: SetKind, name: string): Promise<void> {
  return requestJson<void>(`${setsPath(workspace, kind)}/${encodeURIComponent(name)}`, { method: 'DELETE' });
}
