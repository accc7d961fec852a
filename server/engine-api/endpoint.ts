import { fail, ok, type Result } from '../common/index.ts';

/** Where a Docker Engine API listens: a unix socket or a plain TCP address; `display` as configured. */
export type EngineEndpoint = { display: string; socketPath?: string; host?: string; port?: number };

/**
 * `unix:///path.sock` or `tcp://host:port` (also `http://`, and `[v6]` hosts) → an endpoint.
 * `what` names the setting in messages ("builder", "docker engine"), as the user knows it.
 */
export function parseEngineEndpoint(value: string, what: string): Result<EngineEndpoint, string> {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) return fail(`${what} "${value}": a unix socket needs an absolute path (unix:///var/run/docker.sock)`);
    return ok({ display: value, socketPath });
  }
  const match = /^(?:tcp|http):\/\/([^/:]+|\[[^\]]+\]):(\d+)\/?$/.exec(value);
  if (match) return ok({ display: value, host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) });
  return fail(`${what} "${value}" is not understood: use unix:///path/to/docker.sock or tcp://host:port`);
}
