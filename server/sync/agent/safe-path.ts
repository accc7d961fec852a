import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fail, ok, type Result } from '../../common/index.ts';

export type PathFailure = { code: 'bad_request' | 'forbidden' | 'not_found'; message: string };

/** A path inside the workspace: `real` is absolute with every symlink resolved, `rel` is relative to the real root. */
export type WorkspacePath = { real: string; rel: string };

const MAX_PATH_LENGTH = 4096;

export function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Confines a client-supplied relative path to the workspace. Checked twice: lexically (`../x`)
 * and after resolving symlinks, so a link to /etc/passwd inside the workspace cannot be opened.
 * `realRoot` must itself be a realpath.
 */
export async function resolveWorkspacePath(realRoot: string, requested: unknown): Promise<Result<WorkspacePath, PathFailure>> {
  if (typeof requested !== 'string') return fail({ code: 'bad_request', message: 'path must be a string' });
  if (requested.length > MAX_PATH_LENGTH) return fail({ code: 'bad_request', message: 'path is too long' });
  if (requested.includes('\0')) return fail({ code: 'bad_request', message: 'path contains a NUL byte' });
  if (isAbsolute(requested)) return fail({ code: 'bad_request', message: 'path must be relative to the workspace root' });
  const lexical = resolve(realRoot, requested);
  if (!isInside(realRoot, lexical)) return fail({ code: 'forbidden', message: `path "${requested}" is outside the workspace` });
  let real: string;
  try {
    real = await realpath(lexical);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return fail({ code: 'not_found', message: `"${requested}" does not exist` });
    if (code === 'ELOOP') return fail({ code: 'bad_request', message: `"${requested}" is a symlink loop` });
    throw err;
  }
  if (!isInside(realRoot, real)) return fail({ code: 'forbidden', message: `path "${requested}" leads outside the workspace` });
  return ok({ real, rel: relative(realRoot, real) });
}
