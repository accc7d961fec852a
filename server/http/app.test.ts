import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import type { AppDeps } from './app-types.ts';
import { createAuthenticator, type PrincipalResolver } from './auth.ts';
import { createSiteOrigins } from './origin.ts';

/** The app with only what the access log needs; the feature services are never reached here. */
function createLoggedApp(lines: Array<Record<string, unknown>>) {
  const secrets = { token: 'admin-token', secret: Buffer.alloc(32, 7), generated: false };
  // Like main.ts: the deploy runner's one-time token authenticates its own path.
  const runnerToken: PrincipalResolver = async ({ url }) =>
    url.pathname === '/api/deploy-secrets/ONE-TIME-SECRET' ? { kind: 'share', workspace: '', resource: 'deploy-secrets', role: 'viewer', shareId: 'ONE-TIME-SECRET', exp: Date.now() + 60_000 } : undefined;
  const logger = { info: (f: Record<string, unknown>) => lines.push(f), warn: (f: Record<string, unknown>) => lines.push(f), error: (f: Record<string, unknown>) => lines.push(f) };
  const deploys = { consumeSecret: () => 'export A=1\n' };
  const terminals = { shares: { verify: async () => ({ ok: false, error: { code: 'invalid', message: 'this share link is not valid' } }) } };
  const { app } = createApp({
    workspaces: {} as AppDeps['workspaces'],
    deploys: deploys as unknown as AppDeps['deploys'],
    terminals: terminals as unknown as AppDeps['terminals'],
    docs: {} as AppDeps['docs'],
    hybridEnv: {} as AppDeps['hybridEnv'],
    previews: {} as AppDeps['previews'],
    previewDomain: undefined,
    secrets,
    logger,
    metrics: new Registry(),
    authenticator: createAuthenticator(secrets, [runnerToken]),
    sharePathRules: [(method, path, p) => p.resource === 'deploy-secrets' && method === 'GET' && path === `/api/deploy-secrets/${p.shareId}`],
    site: createSiteOrigins(() => ({ publicUrl: 'http://127.0.0.1:8080', extraOrigins: [] })),
    webDir: undefined,
    artifactsDir: '/nonexistent',
    sessionTtlMs: 60_000,
    sessionKeyTtlMs: { default: 3600_000, max: 24 * 3600_000 },
    maxWebSocketMessageBytes: 1024,
    maxUploadBytes: 1024,
    maxBufferedReadBytes: 1024,
    maxJsonBodyBytes: 1024,
    loginFailureLimit: 10,
    loginFailureWindowMs: 60_000,
  });
  return app;
}

describe('access log', () => {
  it('keeps credentials that travel in the path (runner token, share link) out of it', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const app = createLoggedApp(lines);
    const runner = await app.request('/api/deploy-secrets/ONE-TIME-SECRET');
    expect(runner.status).toBe(200);
    expect(await runner.text()).toBe('export A=1\n');
    expect((await app.request('/s/SHARE-LINK-SECRET')).status).toBe(401);
    const logged = lines.filter((l) => l.event === 'http');
    expect(logged.map((l) => l.path)).toEqual(['/api/deploy-secrets/<redacted>', '/s/<redacted>']);
    expect(JSON.stringify(lines)).not.toMatch(/ONE-TIME-SECRET|SHARE-LINK-SECRET/);
  });
});
