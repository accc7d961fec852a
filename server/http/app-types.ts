import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { DeployService } from '../deploy/server/index.ts';
import type { HybridEnvService } from '../hybrid/server/index.ts';
import type { PreviewService } from '../preview/server/index.ts';
import type { DocService } from '../sync/server/index.ts';
import type { TerminalService } from '../terminal/server/index.ts';
import type { WorkspaceService } from '../workspace/index.ts';
import type { AuthSecrets, Principal } from './auth.ts';
import type { SiteOrigins } from './origin.ts';
import type { WsRouter } from './ws-router.ts';

export type AppEnv = { Variables: { principal: Principal; maxJsonBodyBytes: number } };

export type Logger = {
  info(fields: Record<string, unknown>, message?: string): void;
  warn(fields: Record<string, unknown>, message?: string): void;
  error(fields: Record<string, unknown>, message?: string): void;
};

/** What route modules receive. Feature services are added here as features land. */
export type AppDeps = {
  workspaces: WorkspaceService;
  deploys: DeployService;
  terminals: TerminalService;
  docs: DocService;
  /** Hybrid mode's environment settings and their resolution for a service. */
  hybridEnv: HybridEnvService;
  /** Workspace ports: their lists, the preview proxy and port share links. */
  previews: PreviewService;
  /** `--preview-domain`: previews are also served at `<port>--<workspace>.<domain>`. */
  previewDomain: string | undefined;
  secrets: AuthSecrets;
  logger: Logger;
  metrics: Registry;
  webDir: string | undefined;
  /** Where built artifacts are served from (`--artifacts-dir`): the helper's downloads (server/http/routes/downloads.ts). */
  artifactsDir: string;
  /** The public URL (share links, cookie `Secure`) and the origins whose pages may use a session. */
  site: SiteOrigins;
  sessionTtlMs: number;
  /** Life of a helper's session key when the request names none, and the longest it may ask for. */
  sessionKeyTtlMs: { default: number; max: number };
  maxWebSocketMessageBytes: number;
  /** Request body limit of file writes and tar uploads. */
  maxUploadBytes: number;
  /** Largest JSON request body (login included). */
  maxJsonBodyBytes: number;
  /** Failed logins per client address and window before 429. */
  loginFailureLimit: number;
  loginFailureWindowMs: number;
  /** Files up to this size are hashed in memory; larger ones are read twice. */
  maxBufferedReadBytes: number;
};

export type RouteModule = (app: Hono<AppEnv>, ws: WsRouter, deps: AppDeps) => void;
