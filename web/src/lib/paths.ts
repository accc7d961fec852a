/** Workspace-relative POSIX paths, '' being the workspace root. */

export function joinPath(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function isSameOrUnder(path: string, root: string): boolean {
  return root === '' || path === root || path.startsWith(`${root}/`);
}

/** A name the user typed for a new entry: one or more plain segments, nothing escaping the folder. */
export function checkEntryName(name: string): string | undefined {
  if (name.startsWith('/')) return 'Use a path relative to the folder.';
  const parts = name.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return 'Empty, "." and ".." path parts are not allowed.';
  if (parts.some((p) => p.includes('\0'))) return 'Names cannot contain NUL characters.';
  return undefined;
}

/** `/api/.../files/<path>` with each segment escaped, so names with `?`, `#` or `%` survive. */
export function encodePathForUrl(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
