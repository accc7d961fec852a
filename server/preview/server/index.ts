// The control server's half of previews: port lists fanned out to browsers, the reverse proxy
// over direct-tcpip channels, and port share links. Only server/main.ts wires it.
export { createPreviewService } from './preview-service.ts';
export type { PreviewService, PreviewServiceOptions } from './preview-service.ts';
export type { PortShareRecord, VerifiedPortShare, PortShareRefusal } from './port-shares.ts';
export type { PreviewForm } from './upstream-headers.ts';
export type { ProxyRequest } from './preview-proxy.ts';
export { filterCookieHeader } from './upstream-headers.ts';
