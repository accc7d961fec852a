import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { createPathJail } from '../agent/index.ts';
import { fail, ok, type Result } from '../common/index.ts';
import { validateRelativePath } from './plan.ts';

/**
 * A path of a manifest or request (`context`, `file`, `cwd`) → its real path, only when that is
 * inside `root` (the workspace, or the project folder on the CLI). Textual checks are not
 * enough: `context: link` with `link -> /home/me` would pack the developer's home. The
 * resolution is the SFTP jail's (one resolver: symlinks followed, each hop checked), so the
 * deploy ops and SFTP agree on what "inside" means.
 */
export async function resolveInside(root: string, relative: string, what: string): Promise<Result<string, string>> {
  const checked = validateRelativePath(relative, what);
  if (!checked.ok) return fail(checked.error);
  try {
    return ok((await createPathJail(root).follow(checked.value)).real);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith('EACCES: path resolves outside')) return fail(`${what} "${relative}" resolves (through a symlink) outside ${root}`);
    // A folder on the way does not exist: no link there can lead anywhere, and the caller's own
    // open or pack says "does not exist" in its words.
    if (/^(ENOENT|ENOTDIR):/.test(message)) return ok(join(await realpath(root), checked.value));
    return fail(`${what} "${relative}": ${message}`);
  }
}
