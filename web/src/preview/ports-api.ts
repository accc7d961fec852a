import { requestJson, websocketUrl } from '../lib/api.ts';

/** A listening port of the workspace as the server lists it, with where to open its preview. */
export type PortInfo = { port: number; addresses: string[]; process?: string; pid?: number; urls: { path: string; host?: string } };

export type PortShareInfo = { id: string; port: number; public: boolean; createdAt: string; expiresAt: string; revokedAt?: string; url: string };

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}`;

export function listPorts(workspace: string): Promise<PortInfo[]> {
  return requestJson<{ ports: PortInfo[] }>(`${base(workspace)}/ports`).then((r) => r.ports);
}

/** The websocket on which the server pushes the port list whenever it changes. */
export function portEventsUrl(workspace: string): string {
  return websocketUrl(`${base(workspace)}/port-events`);
}

export function listPortShares(workspace: string, port: number): Promise<PortShareInfo[]> {
  return requestJson<{ shares: PortShareInfo[] }>(`${base(workspace)}/port-shares?port=${port}`).then((r) => r.shares);
}

export function createPortShare(workspace: string, port: number, isPublic: boolean, expiresInSeconds: number): Promise<PortShareInfo> {
  return requestJson<PortShareInfo>(`${base(workspace)}/port-shares`, { method: 'POST', json: { port, public: isPublic, expiresInSeconds } });
}

export function revokePortShare(workspace: string, shareId: string): Promise<void> {
  return requestJson<void>(`${base(workspace)}/port-shares/${encodeURIComponent(shareId)}`, { method: 'DELETE' });
}
