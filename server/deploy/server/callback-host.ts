import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/**
 * The runner calls the server back by the callback URL's host name from inside a build step, and
 * a build step does not always resolve names as the server does: BuildKit drops loopback name
 * servers from the step's resolv.conf (dockerd 20.10's drops Docker's embedded DNS at 127.0.0.11,
 * putting 8.8.8.8 in its place even on the host network), so in compose.yaml `http://wharf:8080`
 * was a "bad address" for the runner. The server resolves the name itself and the build gets it in
 * /etc/hosts (`extrahosts`), the way `docker build --add-host` does.
 *
 * Nothing is pinned for an address literal, for a name the server cannot resolve (the runner then
 * tries its own DNS and reports what it gets), or for one the server sees on loopback: a machine's
 * own name maps to 127.0.1.1 in its /etc/hosts, which would be wrong in a builder elsewhere.
 */
export async function pinCallbackHost(callbackUrl: string, resolve: typeof lookup = lookup): Promise<string[]> {
  let host: string;
  try {
    host = new URL(callbackUrl).hostname;
  } catch {
    return [];
  }
  if (!host || isIP(host.replace(/^\[|\]$/g, ''))) return [];
  const addresses = await resolve(host, { all: true }).catch(() => []);
  const usable = addresses.filter((a) => !isLoopback(a.address));
  const chosen = usable.find((a) => a.family === 4) ?? usable[0];
  return chosen ? [`${host}:${chosen.address}`] : [];
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
