import { getRequestListener } from '@hono/node-server';
import { createServer as createHttpServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { DriverKind, ServerConfig } from './config/index.ts';
import { createDeployService } from './deploy/server/index.ts';
import {
  createApp,
  createAuthenticator,
  createPreviewGateway,
  createSessionRevocations,
  createShareResolver,
  createSiteOrigins,
  loadAuthSecrets,
  SHARE_PATH_RULES,
  type PrincipalResolver,
  type SharePathRule,
} from './http/index.ts';
import { createHybridEnvService } from './hybrid/server/index.ts';
import { createPreviewService } from './preview/server/index.ts';
import { createDocService } from './sync/server/index.ts';
import { createTerminalService } from './terminal/server/index.ts';
import { WharfError } from './common/index.ts';
import { createDriverSet, createReplicaRegistry, createWorkspaceService, loadOrCreateServerKey, type ReplicaRegistry, type WorkspaceDriver } from './workspace/index.ts';
import { chooseRunDir, createProcessDriver } from './workspace/process/index.ts';
import { createDockerDriver } from './workspace/docker/index.ts';
import { createKubernetesDriver } from './workspace/kubernetes/index.ts';
import { parseEngineEndpoint } from './engine-api/index.ts';
import { createHash } from 'node:crypto';

const codeRoot = dirname(dirname(fileURLToPath(import.meta.url)));

export type RunningServer = {
  url: string;
  loginUrl: string;
  token: string;
  tokenGenerated: boolean;
  /** Stops the server; agents are stopped too unless `keepAgents` (a restart that keeps ptys). */
  close(options?: { keepAgents?: boolean }): Promise<void>;
};

/**
 * The workspace driver `config.driver` names, with its own settings (`config.drivers.<kind>`).
 * The config refuses drivers not built yet, so every kind it lets through is wired here.
 */
export function createConfiguredDriver(
  config: ServerConfig,
  log: (event: string, fields?: Record<string, unknown>) => void,
  kind: DriverKind = config.driver,
  // The other servers on this data dir (docs/replicas.md): the last one out stops the agents.
  replicas: ReplicaRegistry = createReplicaRegistry({ dataDir: config.dataDir, heartbeatMs: config.limits.agentSuperviseIntervalMs }),
): WorkspaceDriver {
  // The same bounds and feature flags reach every driver's agents.
  const extraAgentArgs = [
    '--terminal-grace-ms', String(config.limits.terminalGraceMs),
    '--login-grace-ms', String(config.limits.sshLoginGraceMs),
    '--max-startups', String(config.limits.sshMaxStartups),
    '--terminal-link-clients', String(config.limits.terminalClientsPerLink),
    '--terminal-clients', String(config.limits.terminalClientsPerTerminal),
    '--terminal-admin-clients', String(config.limits.terminalClientsPerAdmin),
    '--store-max-bytes', String(config.limits.featureDataMaxBytes),
    '--max-key-ttl-ms', String(config.limits.sessionKeyMaxTtlMs),
  ];
  switch (kind) {
    case 'process': {
      const settings = config.drivers.process;
      return createProcessDriver({
        dataDir: config.dataDir,
        runDir: chooseRunDir({ dataDir: config.dataDir, runtimeDir: settings.runtimeDir }),
        sandbox: settings.sandbox,
        sandboxUser: settings.sandboxUser,
        agentBundle: config.agentBundle,
        nodePath: process.execPath,
        restartDelayMs: config.limits.agentRestartDelayMs,
        stopGraceMs: config.limits.agentStopGraceMs,
        startTimeoutMs: config.limits.agentStartTimeoutMs,
        superviseMs: config.limits.agentSuperviseIntervalMs,
        replicas,
        extraAgentArgs,
        agentEnv: config.agentEnvironment,
        log,
      });
    }
    case 'docker': {
      const settings = config.drivers.docker;
      const endpoint = parseEngineEndpoint(settings.host, '--docker-host');
      if (!endpoint.ok) throw new WharfError('bad_request', endpoint.error);
      return createDockerDriver({
        endpoint: endpoint.value,
        // Servers on one engine with different data dirs keep to their own workspaces; a restarted
        // one (same data dir) finds its own again.
        instance: createHash('sha256').update(config.dataDir).digest('hex').slice(0, 12),
        image: settings.image,
        user: settings.user,
        network: settings.network,
        resources: settings.resources,
        agentBundle: config.agentBundle,
        nodePath: process.execPath,
        restartDelayMs: config.limits.agentRestartDelayMs,
        stopGraceMs: config.limits.agentStopGraceMs,
        startTimeoutMs: config.limits.agentStartTimeoutMs,
        replicas,
        extraAgentArgs,
        agentEnv: config.agentEnvironment,
        log,
      });
    }
    case 'kubernetes': {
      const settings = config.drivers.kubernetes;
      return createKubernetesDriver({
        kubeconfig: settings.kubeconfig,
        context: settings.context,
        namespace: settings.namespace,
        // As with the docker driver: servers of one data dir (replicas share it) see the same workspaces.
        instance: createHash('sha256').update(config.dataDir).digest('hex').slice(0, 12),
        image: settings.image,
        runtimeImage: settings.runtimeImage,
        user: settings.user,
        resources: settings.resources,
        storageClass: settings.storageClass,
        storageSize: settings.storageSize,
        nodeSelector: settings.nodeSelector,
        tolerations: settings.tolerations,
        serviceAccount: settings.serviceAccount,
        restartDelayMs: config.limits.agentRestartDelayMs,
        stopGraceMs: config.limits.agentStopGraceMs,
        // A pod may have to pull its images first: at least two minutes.
        startTimeoutMs: Math.max(config.limits.agentStartTimeoutMs, 120_000),
        extraAgentArgs,
        agentEnv: config.agentEnvironment,
        log,
      });
    }
    default:
      throw new WharfError('unavailable', `the ${kind} driver is not available yet`);
  }
}

/** Composition root: config → drivers → services → app → listen. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const logger = pino({ level: config.logLevel, base: { component: 'server' } });
  for (const warning of config.warnings) logger.warn({ event: 'config.warning', message: warning });
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });

  const secrets = await loadAuthSecrets(config.dataDir, config.token);
  const serverKey = await loadOrCreateServerKey(config.dataDir);
  const driverLog = (event: string, fields?: Record<string, unknown>) => logger.info({ event, ...fields });
  // One driver as it is; several (`--driver process,docker`) behind a set that routes by workspace.
  const replicas = createReplicaRegistry({ dataDir: config.dataDir, heartbeatMs: config.limits.agentSuperviseIntervalMs });
  const driver = config.driverKinds.length > 1
    ? createDriverSet(config.driverKinds.map((kind) => createConfiguredDriver(config, driverLog, kind, replicas)))
    : createConfiguredDriver(config, driverLog, config.driver, replicas);
  await driver.init();
  // What the create form offers per driver: the container drivers' default image and limits.
  const driverOffers = {
    docker: { image: config.drivers.docker.image, resources: config.drivers.docker.resources },
    kubernetes: { image: config.drivers.kubernetes.image, resources: config.drivers.kubernetes.resources },
  };
  const workspaces = createWorkspaceService({ driver, driverKinds: config.driverKinds, driverOffers, serverKey, agentTimeoutMs: config.limits.agentTimeoutMs, seedRoot: config.seedRoot, protectedDirs: [config.dataDir], featureDataMaxBytes: config.limits.featureDataMaxBytes });

  const terminals = createTerminalService({
    workspaces,
    secret: secrets.secret,
    limits: {
      clientQueueBytes: config.limits.terminalClientQueueBytes,
      maxFrameBytes: config.limits.maxWebSocketMessageBytes,
      // A terminal request is one answer from the agent, bounded like every other (`--agent-timeout`).
      requestTimeoutMs: config.limits.agentTimeoutMs,
      maxShareTtlMs: config.limits.terminalShareMaxTtlMs,
      maxSharesPerWorkspace: config.limits.terminalSharesPerWorkspace,
      shareRecheckMs: config.limits.terminalShareRecheckMs,
    },
    log: (event, fields) => logger.warn({ event, ...fields }),
  });

  const docs = createDocService({
    workspaces,
    limits: {
      maxMessageBytes: config.limits.maxWebSocketMessageBytes,
      highWaterBytes: config.limits.docHighWaterBytes,
      lowWaterBytes: config.limits.docLowWaterBytes,
      drainCheckMs: config.limits.docDrainCheckMs,
      fanOutMaxBytes: config.limits.docFanOutMaxBytes,
      agentBatchMs: config.limits.docAgentBatchMs,
      agentBatchMaxBytes: config.limits.docAgentBatchMaxBytes,
      replyMaxBytes: config.limits.docReplyMaxBytes,
    },
  });

  // The runner calls back from the builder's host network; the address is known once listening.
  let deployCallbackUrl = config.deployCallbackUrl ?? '';
  const deploys = createDeployService({
    workspaces,
    builder: config.builder,
    runnerImage: config.runnerImage,
    adminVariables: config.adminVariables,
    kubeconfigPath: config.deploy.kubeconfig,
    callbackUrl: () => deployCallbackUrl,
    limits: {
      historyRuns: config.limits.deployHistoryRuns,
      storedLogBytes: config.limits.deployStoredLogBytes,
      liveLogBytes: config.limits.deployLiveLogBytes,
      secretTtlMs: config.limits.deploySecretTtlMs,
      builderProbeTimeoutMs: config.limits.builderTimeoutMs,
      finishedRetentionMs: config.limits.deployFinishedRetentionMs,
      boardRetryMs: config.limits.deployBoardRetryMs,
    },
    log: (event, fields) => logger.info({ event, ...fields }),
  });
  // A deploy runner's single-use token authenticates exactly one request: its own variables.
  const deploySecretResolver: PrincipalResolver = async ({ url }) => {
    const live = deploys.secretTokenForPath(url.pathname);
    return live && { kind: 'share', workspace: '', resource: 'deploy-secrets', role: 'viewer', shareId: live.token, exp: live.expiresAt };
  };
  const deploySecretRule: SharePathRule = (method, path, principal) =>
    principal.resource === 'deploy-secrets' && method === 'GET' && path === `/api/deploy-secrets/${principal.shareId}`;

  const sessionRevocations = createSessionRevocations(join(config.dataDir, 'revoked-sessions'));
  const authenticator = createAuthenticator(secrets, [deploySecretResolver, createShareResolver(terminals.shares)], sessionRevocations);
  // The public URL is known once listening when `--port 0` picks the port: read at request time.
  let origins = { publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`, extraOrigins: config.allowedOrigins };
  const site = createSiteOrigins(() => origins);
  const hybridEnv = createHybridEnvService({ workspaces });
  const previews = createPreviewService({
    workspaces,
    secret: secrets.secret,
    limits: {
      maxShareTtlMs: config.limits.terminalShareMaxTtlMs,
      maxSharesPerWorkspace: config.limits.terminalSharesPerWorkspace,
      shareRecheckMs: config.limits.terminalShareRecheckMs,
      agentTimeoutMs: config.limits.agentTimeoutMs,
    },
    log: (event, fields) => logger.warn({ event, ...fields }),
  });

  const { app, ws } = createApp({
    workspaces,
    terminals,
    docs,
    deploys,
    hybridEnv,
    previews,
    previewDomain: config.previewDomain,
    sharePathRules: [...SHARE_PATH_RULES, deploySecretRule],
    secrets,
    logger,
    metrics,
    authenticator,
    sessionRevocations,
    site,
    webDir: join(codeRoot, 'web', 'dist'),
    artifactsDir: config.artifactsDir,
    sessionTtlMs: config.limits.sessionTtlMs,
    sessionKeyTtlMs: { default: config.limits.sessionKeyDefaultTtlMs, max: config.limits.sessionKeyMaxTtlMs },
    maxWebSocketMessageBytes: config.limits.maxWebSocketMessageBytes,
    maxUploadBytes: config.limits.maxUploadBytes,
    maxBufferedReadBytes: config.limits.maxBufferedReadBytes,
    maxJsonBodyBytes: config.limits.maxJsonBodyBytes,
    loginFailureLimit: config.limits.loginFailureLimit,
    loginFailureWindowMs: config.limits.loginFailureWindowMs,
  });

  // Previews are served on raw Node requests before Hono sees them: bodies and websockets then
  // stream to the app with nothing in between, and a preview host never reaches the IDE's routes.
  const previewGateway = createPreviewGateway({ previews, authenticator, site, secret: secrets.secret, sessionRevocations, previewDomain: config.previewDomain, logger });
  const honoListener = getRequestListener(app.fetch);
  const server = createHttpServer((request, response) => {
    if (!previewGateway.handleRequest(request, response)) void honoListener(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('upgrade', (request, socket, head) => {
    if (!previewGateway.handleUpgrade(request, socket, head)) ws.handleUpgrade(request, socket, head);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const wildcard = ['0.0.0.0', '[::]'].includes(host);
  const url = (config.publicUrl ?? `http://${wildcard ? '127.0.0.1' : host}:${address.port}`).replace(/\/+$/, '');
  // Without --public-url, the UI may also be opened as localhost when that is where we listen.
  const loopback = config.publicUrl === undefined && (wildcard || ['127.0.0.1', '[::1]'].includes(host));
  origins = { publicUrl: url, extraOrigins: [...config.allowedOrigins, ...(loopback ? [`http://localhost:${address.port}`] : [])] };
  deployCallbackUrl ||= `http://${wildcard ? '127.0.0.1' : host}:${address.port}`;
  logger.info({ event: 'listening', url });

  let closing: Promise<void> | undefined;
  return {
    url,
    loginUrl: `${url}/login?token=${encodeURIComponent(secrets.token)}`,
    token: secrets.token,
    tokenGenerated: secrets.generated,
    close(options = {}) {
      closing ??= (async () => {
        await deploys.shutdown(config.limits.deployShutdownGraceMs);
        ws.close();
        terminals.shutdown();
        previews.shutdown();
        server.closeAllConnections?.();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await workspaces.shutdown(!options.keepAgents);
        logger.info({ event: 'stopped' });
      })();
      return closing;
    },
  };
}
