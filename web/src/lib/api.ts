import type { DriverOffer, Workspace } from '../../../server/common/index.ts';

/** An HTTP error from the server, carrying its `{error:{code,message}}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Where a request without a valid session goes: the server's own login page. */
export function redirectToLogin(): never {
  location.assign('/login');
  throw new ApiError(401, 'unauthorized', 'sign in first');
}

async function readError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    if (body.error?.message) return new ApiError(res.status, body.error.code ?? 'error', body.error.message, body.error.details);
  } catch {
    // not JSON: fall through to the raw text
  }
  return new ApiError(res.status, 'error', text.trim() || `${res.status} ${res.statusText}`);
}

/** The session's CSRF token, which the server sets in a cookie the page can read. */
function readCsrfToken(): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === 'wharf_csrf') return decodeURIComponent(value.join('='));
  }
  return undefined;
}

/**
 * fetch() with the session cookie; a 401 sends the user to the login page. Every request that
 * changes something carries the CSRF token (`X-Wharf-CSRF`), which a page of another origin
 * cannot read, so the server can tell this UI from another site's page using our cookie.
 */
export async function request(path: string, init: RequestInit & { json?: unknown; redirectOn401?: boolean } = {}): Promise<Response> {
  const { json, redirectOn401 = true, ...rest } = init;
  const headers = new Headers(rest.headers);
  const method = (rest.method ?? 'GET').toUpperCase();
  const csrf = readCsrfToken();
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method) && csrf && !headers.has('x-wharf-csrf')) headers.set('x-wharf-csrf', csrf);
  let body = rest.body;
  if (json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(json);
  }
  const res = await fetch(path, { credentials: 'same-origin', ...rest, headers, body });
  if (res.status === 401 && redirectOn401) redirectToLogin();
  if (!res.ok) throw await readError(res);
  return res;
}

export async function requestJson<T>(path: string, init: RequestInit & { json?: unknown; redirectOn401?: boolean } = {}): Promise<T> {
  const res = await request(path, init);
  if (res.status === 204) return undefined as T;
  if (!(res.headers.get('content-type') ?? '').includes('json')) {
    // An HTML answer means the route does not exist on this server (the page is served for unknown GETs).
    throw new ApiError(res.status, 'bad_response', `the server has no API at ${path.split('?')[0]}`);
  }
  return (await res.json()) as T;
}

export function listWorkspaces(): Promise<Workspace[]> {
  return requestJson<{ workspaces: Workspace[] }>('/api/workspaces').then((r) => r.workspaces);
}

export function getWorkspace(id: string): Promise<Workspace> {
  return requestJson<Workspace>(`/api/workspaces/${encodeURIComponent(id)}`);
}

/** What a create request may carry besides the name: a driver of the server's, an image, limits as typed ("2g"). */
export type CreateOptions = { driver?: string; image?: string; resources?: { cpus?: number; memory?: string; pids?: number; disk?: string } };

export function createWorkspace(name: string, options: CreateOptions = {}): Promise<Workspace> {
  return requestJson<Workspace>('/api/workspaces', { method: 'POST', json: { name, ...options } });
}

export function listDrivers(): Promise<DriverOffer[]> {
  return requestJson<{ drivers: DriverOffer[] }>('/api/drivers').then((r) => r.drivers);
}

export function deleteWorkspace(id: string): Promise<void> {
  return requestJson<void>(`/api/workspaces/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function startWorkspace(id: string): Promise<Workspace> {
  return requestJson<Workspace>(`/api/workspaces/${encodeURIComponent(id)}/start`, { method: 'POST' });
}

export function stopWorkspace(id: string): Promise<Workspace> {
  return requestJson<Workspace>(`/api/workspaces/${encodeURIComponent(id)}/stop`, { method: 'POST' });
}

/** ws:// or wss:// URL for a path on this server. */
export function websocketUrl(path: string): string {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
