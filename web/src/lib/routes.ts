/** Client-side routes; the server answers every non-API GET with the single page. */
export type Route =
  | { view: 'list' }
  | { view: 'workspace'; id: string }
  | { view: 'share'; workspace: string; terminal: string }
  | { view: 'missing' };

export function parseRoute(pathname: string): Route {
  let parts: string[];
  try {
    parts = pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  } catch {
    return { view: 'missing' };
  }
  if (parts.length === 0) return { view: 'list' };
  if (parts[0] === 'workspaces' && parts.length === 2) return { view: 'workspace', id: parts[1] };
  if (parts[0] === 'share' && parts.length === 3) return { view: 'share', workspace: parts[1], terminal: parts[2] };
  return { view: 'missing' };
}

export function buildWorkspacePath(id: string): string {
  return `/workspaces/${encodeURIComponent(id)}`;
}
