/**
 * Which browser origins may act with this server's cookies. Browsers count every port of a host
 * as the same *site*, so `SameSite=Strict` lets a page from any other port of the host (a dev
 * server inside a workspace, which shares the host's network) send the admin's cookie. The
 * `Origin` header is what tells those pages apart: only the server's own public origin and the
 * ones configured with `--allowed-origin` are accepted.
 */
export type SiteOrigins = {
  /** The public base URL (`--public-url`, else the address the server listens on), no trailing slash. */
  publicUrl(): string;
  /** Every origin whose pages may use a session: the public URL's and the configured ones. */
  allowedOrigins(): readonly string[];
};

export function createSiteOrigins(read: () => { publicUrl: string; extraOrigins: readonly string[] }): SiteOrigins {
  return {
    publicUrl: () => read().publicUrl.replace(/\/+$/, ''),
    allowedOrigins: () => {
      const { publicUrl, extraOrigins } = read();
      return [new URL(publicUrl).origin, ...extraOrigins];
    },
  };
}

/** `Origin: null` (sandboxed frames, some redirects) matches nothing, so it is refused too. */
export function isAllowedOrigin(site: SiteOrigins, origin: string): boolean {
  return site.allowedOrigins().includes(origin.toLowerCase().replace(/\/+$/, ''));
}
