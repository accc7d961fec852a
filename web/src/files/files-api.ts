import type { DirectoryEntry } from '../../../server/common/index.ts';
import { ApiError, request, requestJson } from '../lib/api.ts';
import { encodePathForUrl } from '../lib/paths.ts';

/** An entry as the tree uses it; `ignored` marks what .gitignore excludes (shown dimmed). */
export type TreeEntry = DirectoryEntry & { ignored?: boolean };

function fileUrl(workspace: string, path: string, query = ''): string {
  return `/api/workspaces/${encodeURIComponent(workspace)}/files/${encodePathForUrl(path)}${query}`;
}

/** A folder's entries, with what .gitignore hides marked (that part is best effort). */
export async function listDirectory(workspace: string, dir: string): Promise<TreeEntry[]> {
  const [listing, ignoredNames] = await Promise.all([
    requestJson<{ entries: TreeEntry[] }>(fileUrl(workspace, dir), { headers: { accept: 'application/json' } }),
    requestJson<{ ignored: string[] }>(`/api/workspaces/${encodeURIComponent(workspace)}/ignored?dir=${encodeURIComponent(dir)}`)
      .then((r) => new Set(r.ignored))
      .catch(() => new Set<string>()),
  ]);
  return listing.entries.map((e) => (ignoredNames.has(e.name) ? { ...e, ignored: true } : e));
}

/** Writes a whole file (parents are made); `createOnly` refuses to replace an existing one. */
export async function writeFile(workspace: string, path: string, content: BodyInit, options: { createOnly?: boolean } = {}): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (options.createOnly) headers['if-none-match'] = '*';
  try {
    await request(fileUrl(workspace, path), { method: 'PUT', body: content, headers });
  } catch (err) {
    if (options.createOnly && err instanceof ApiError && err.status === 412) throw new ApiError(412, 'exists', `"${path}" already exists`);
    throw err;
  }
}

export async function makeDirectory(workspace: string, path: string): Promise<void> {
  await request(fileUrl(workspace, path, '?op=mkdir'), { method: 'POST' });
}

export async function renamePath(workspace: string, path: string, to: string): Promise<void> {
  await request(fileUrl(workspace, path, '?op=rename'), { method: 'POST', json: { to } });
}

export async function deletePath(workspace: string, path: string): Promise<void> {
  await request(fileUrl(workspace, path), { method: 'DELETE' });
}
