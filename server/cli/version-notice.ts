import type { Writable } from 'node:stream';
import { compareVersions } from '../common/index.ts';

/** The header every answer of a wharf server carries (server/http/app.ts). */
export const SERVER_VERSION_HEADER = 'x-wharf-version';

/**
 * Tells the user, once per command, that this helper is older than the server it talks to, with
 * the command that updates it. Called with the server's version (its `X-Wharf-Version` header)
 * on every answer; the command goes on either way: an old helper usually still works, and a
 * command that does not is better failing on its own error than on this.
 */
export function createVersionNotice(helperVersion: string, stderr: Writable): (serverUrl: string, serverVersion: string | null | undefined) => void {
  let told = false;
  return (serverUrl, serverVersion) => {
    if (told || !serverVersion) return;
    const order = compareVersions(helperVersion, serverVersion);
    if (order === undefined || order >= 0) return;
    told = true;
    stderr.write(`wharf: this helper is ${helperVersion}, the server is ${serverVersion}: update with curl -fsSL ${serverUrl}/downloads/install.sh | sh\n`);
  };
}
