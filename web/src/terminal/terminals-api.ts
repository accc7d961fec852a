import type { TerminalInfo, TerminalRole } from '../../../server/common/index.ts';
import { requestJson, websocketUrl } from '../lib/api.ts';

export type ShareInfo = {
  id: string;
  role: TerminalRole;
  expiresAt: string;
  revokedAt?: string;
  url?: string;
};

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}/terminals`;

/** Lists a workspace's terminals; accepts both `{terminals:[...]}` and a bare array. */
export async function listTerminals(workspace: string): Promise<TerminalInfo[]> {
  const body = await requestJson<{ terminals: TerminalInfo[] } | TerminalInfo[]>(base(workspace));
  return Array.isArray(body) ? body : body.terminals;
}

export function createTerminal(workspace: string, size: { cols: number; rows: number }): Promise<TerminalInfo> {
  return requestJson<TerminalInfo>(base(workspace), { method: 'POST', json: { cols: size.cols, rows: size.rows } });
}

export function killTerminal(workspace: string, id: string): Promise<void> {
  return requestJson<void>(`${base(workspace)}/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function buildAttachUrl(workspace: string, id: string, size: { cols: number; rows: number }): string {
  // flow=ack: this view acknowledges what it has rendered (see TerminalSession).
  return websocketUrl(`${base(workspace)}/${encodeURIComponent(id)}/attach?cols=${size.cols}&rows=${size.rows}&flow=ack`);
}

export function createShare(workspace: string, id: string, role: TerminalRole, expiresInSeconds: number): Promise<ShareInfo & { url: string }> {
  return requestJson(`${base(workspace)}/${encodeURIComponent(id)}/shares`, { method: 'POST', json: { role, expiresInSeconds } });
}

export async function listShares(workspace: string, id: string): Promise<ShareInfo[]> {
  const body = await requestJson<{ shares: ShareInfo[] } | ShareInfo[]>(`${base(workspace)}/${encodeURIComponent(id)}/shares`);
  return Array.isArray(body) ? body : body.shares;
}

export function revokeShare(workspace: string, id: string, shareId: string): Promise<void> {
  return requestJson<void>(`${base(workspace)}/${encodeURIComponent(id)}/shares/${encodeURIComponent(shareId)}`, { method: 'DELETE' });
}
