import { PORT_RANGE } from './protocol.ts';

/** A workspace id as the workspace service accepts it (see server/workspace/service.ts). */
const WORKSPACE_ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** A port from a URL: digits only (no `+1`, `0x50`, ` 80`), in range; otherwise undefined. */
export function parsePortNumber(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= PORT_RANGE.min && port <= PORT_RANGE.max ? port : undefined;
}

/**
 * `<port>--<workspace>.<preview domain>`, Coder's separator. A workspace id may contain
 * `--` itself, so the port goes first and the split is at the first `--` (a port has no dash).
 * Returns undefined for a host that is not a preview host of `domain`.
 */
export function parsePreviewHost(hostHeader: string | undefined, domain: string): { port: number; workspace: string } | undefined {
  if (!hostHeader) return undefined;
  const host = hostHeader.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return undefined;
  const label = host.slice(0, -suffix.length);
  if (label.includes('.')) return undefined;
  const split = label.indexOf('--');
  if (split <= 0) return undefined;
  const port = parsePortNumber(label.slice(0, split));
  const workspace = label.slice(split + 2);
  if (port === undefined || !WORKSPACE_ID.test(workspace)) return undefined;
  return { port, workspace };
}

/** The host name of a port's preview origin (no port number: that is the server's). */
export function formatPreviewHost(port: number, workspace: string, domain: string): string {
  return `${port}--${workspace}.${domain.toLowerCase()}`;
}
