import { requestJson, websocketUrl } from '../lib/api.ts';

/** Wire types of docs/deploy.md. */
export type DeployCommand = { index: number; name: string; command: string };
export type FailedCommand = { index: number; name: string; exitCode: number };
export type DeployStatus = 'running' | 'succeeded' | 'failed' | 'error' | 'cancelled';

export type DeployEvent =
  | { type: 'plan'; at: number; id: string; kind: 'deploy' | 'destroy'; mode: 'remote' | 'local'; image?: string; commands: DeployCommand[] }
  | { type: 'phase'; at: number; phase: string; message: string }
  | { type: 'context'; at: number; bytes: number; files: number; hint?: string }
  | { type: 'warning'; at: number; message: string }
  | { type: 'log'; at: number; text: string }
  | { type: 'command-start'; at: number; index: number; name: string; command: string }
  | { type: 'output'; at: number; index: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'command-end'; at: number; index: number; exitCode: number; durationMs: number }
  | { type: 'done'; at: number; status: Exclude<DeployStatus, 'running'>; failedCommand?: FailedCommand; message?: string; durationMs: number };

export type DeployRun = {
  id: string;
  workspace: string;
  kind: 'deploy' | 'destroy';
  mode: 'remote' | 'local' | null;
  status: DeployStatus;
  startedAt: string;
  durationMs: number | null;
  failedCommand?: FailedCommand;
  message?: string;
  commands: DeployCommand[];
  events?: DeployEvent[];
  logTruncated?: boolean;
};

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}`;

export function startRun(workspace: string, kind: 'deploy' | 'destroy', options: { remote?: boolean } = {}): Promise<{ id: string; kind: string; status: DeployStatus }> {
  return requestJson(`${base(workspace)}/${kind === 'deploy' ? 'deploys' : 'destroys'}`, { method: 'POST', json: options.remote === undefined ? {} : { remote: options.remote } });
}

export async function listRuns(workspace: string): Promise<DeployRun[]> {
  return (await requestJson<{ deploys: DeployRun[] }>(`${base(workspace)}/deploys`)).deploys;
}

export function getRun(workspace: string, id: string): Promise<DeployRun> {
  return requestJson<DeployRun>(`${base(workspace)}/deploys/${encodeURIComponent(id)}`);
}

/** The run as it is once cancelled; still `running` when it had not stopped by the server's wait (HTTP 202). */
export function cancelRun(workspace: string, id: string): Promise<DeployRun> {
  return requestJson<DeployRun>(`${base(workspace)}/deploys/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function buildEventsUrl(workspace: string, id: string): string {
  return websocketUrl(`${base(workspace)}/deploys/${encodeURIComponent(id)}/events`);
}
