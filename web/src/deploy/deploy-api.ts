import type { DeployKind, DeployRun, DeployStatus } from '../../../server/common/index.ts';
import { requestJson, websocketUrl } from '../lib/api.ts';

/** Wire types of docs/deploy.md, as the server defines them (the UI takes only types from server/common). */
export type { DeployEvent, DeployRun, DeployStatus, FailedCommand } from '../../../server/common/index.ts';

const base = (workspace: string) => `/api/workspaces/${encodeURIComponent(workspace)}`;

export function startRun(workspace: string, kind: DeployKind, options: { remote?: boolean } = {}): Promise<{ id: string; kind: string; status: DeployStatus }> {
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
