import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { fail, ok, type Result } from '../common/index.ts';
import { validateRelativePath } from './plan.ts';

/** Follows a relative path from a root to its real path; throws `EACCES: path resolves outside…` past the root. */
export type PathResolver = (relative: string) => Promise<{ real: string }>;

/**
 * On the developer's machine (the CLI) symlinks mean what they say there: the real path must
 * stay under the real root. In a workspace the agent passes the SFTP jail instead, where an
 * absolute link target means the workspace's own view. (The CLI must not load the agent.)
 */
export function createHostResolver(root: string): PathResolver {
  return async (relative) => {
    const rootReal = await realpath(root);
    const real = await realpath(join(rootReal, relative));
    if (real !== rootReal && !real.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep)) throw new Error('EACCES: path resolves outside the project');
    return { real };
  };
}

/**
 * A path of a manifest or request (`context`, `file`, `cwd`) → its real path, only when that is
 * inside `root` (the workspace, or the project folder on the CLI). Textual checks are not
 * enough: `context: link` with `link -> /home/me` would pack the developer's home. The
 * resolution in a workspace is the SFTP jail's (one resolver: symlinks followed, each hop
 * checked), so the deploy ops and SFTP agree on what "inside" means.
 */
export async function resolveInside(root: string, relative: string, what: string, follow: PathResolver = createHostResolver(root)): Promise<Result<string, string>> {
  const checked = validateRelativePath(relative, what);
  if (!checked.ok) return fail(checked.error);
  try {
    return ok((await follow(checked.value)).real);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith('EACCES: path resolves outside')) return fail(`${what} "${relative}" resolves (through a symlink) outside ${root}`);
    // A folder on the way does not exist: no link there can lead anywhere, and the caller's own
    // open or pack says "does not exist" in its words.
    if (/^(ENOENT|ENOTDIR):/.test(message)) return ok(join(await realpath(root), checked.value));
    return fail(`${what} "${relative}": ${message}`);
  }
}
