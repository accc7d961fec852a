import { fail, ok, type Result } from '../common/index.ts';

/**
 * A path inside a workspace, relative to its root, in one canonical form: segments joined by `/`,
 * no leading or trailing slash, `''` for the root. Only `parseWorkspacePath` makes one, so every
 * operation gets a path that was checked once, the same way.
 */
export type WorkspacePath = string & { readonly __workspacePath: true };

export const WORKSPACE_ROOT = '' as WorkspacePath;

export type PathFailure = { code: 'bad_request'; message: string };

function refuse(message: string): { ok: false; error: PathFailure } {
  return fail({ code: 'bad_request', message });
}

/**
 * Checks a path given by a client. `encoded` is how it arrived: percent-encoded URL segments
 * (each decoded on its own, so `%2F` cannot smuggle in a separator) or a plain string from a
 * JSON body. Refused: `.` and `..` segments, absolute paths, empty segments, NUL bytes and
 * backslashes (a Windows separator that some tools would honour).
 */
export function parseWorkspacePath(raw: string, options: { encoded: boolean }): Result<WorkspacePath, PathFailure> {
  if (raw === '') return ok(WORKSPACE_ROOT);
  if (raw.startsWith('/')) return refuse('path must be relative to the workspace root, not absolute');
  const rawSegments = raw.split('/');
  // One trailing slash names the same thing (a folder); more than that is an empty segment.
  if (rawSegments.length > 1 && rawSegments[rawSegments.length - 1] === '') rawSegments.pop();
  const segments: string[] = [];
  for (const rawSegment of rawSegments) {
    let segment = rawSegment;
    if (options.encoded) {
      try {
        segment = decodeURIComponent(rawSegment);
      } catch {
        return refuse(`path segment "${rawSegment}" is not valid percent-encoding`);
      }
    }
    if (segment.includes('\0')) return refuse('path must not contain NUL bytes');
    if (segment.includes('\\')) return refuse('path must not contain backslashes');
    if (segment === '') return refuse('path must not contain empty segments ("//")');
    if (segment === '..') return refuse('path must not contain ".." segments');
    if (segment === '.') return refuse('path must not contain "." segments');
    if (segment.includes('/')) {
      return refuse(segment.startsWith('/') ? 'path must be relative to the workspace root, not absolute' : 'path segments must not contain an encoded "/"');
    }
    segments.push(segment);
  }
  return ok(segments.join('/') as WorkspacePath);
}

/** The path as the agent's SFTP server sees it (its `/` is the workspace root). */
export function toSftpPath(path: WorkspacePath): string {
  return `/${path}`;
}

export function joinPath(parent: WorkspacePath, name: string): WorkspacePath {
  return (parent === '' ? name : `${parent}/${name}`) as WorkspacePath;
}

export function parentOf(path: WorkspacePath): WorkspacePath {
  const slash = path.lastIndexOf('/');
  return (slash < 0 ? '' : path.slice(0, slash)) as WorkspacePath;
}

export function baseName(path: WorkspacePath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** An SFTP (client-view) path the agent returned → a workspace path, when it is one. */
export function fromSftpPath(sftpPath: string): WorkspacePath {
  return sftpPath.replace(/^\/+/, '').replace(/\/+$/, '') as WorkspacePath;
}
