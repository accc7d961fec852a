export { createApp, PUBLIC_PATHS } from './app.ts';
export type { SharePathRule } from './app.ts';
export { createAuthenticator, loadAuthSecrets, SESSION_COOKIE } from './auth.ts';
export type { Principal, PrincipalResolver, Authenticator, AuthSecrets } from './auth.ts';
export type { AppDeps, AppEnv, Logger, RouteModule } from './app-types.ts';
export { httpStatusOf, closeCodeOf, closeReasonOf } from './error-mapping.ts';
export type { WsRoute, WsRouter } from './ws-router.ts';
export { createShareResolver, SHARE_PATH_RULES } from './share-auth.ts';
