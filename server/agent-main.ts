import { loadAgentConfig, readProcessContext } from './config/index.ts';
import { createDeployAgentFeature } from './deploy/agent/index.ts';
import { createForwardingFeature, createServiceEnvFeature } from './hybrid/agent/index.ts';
import { createPortsFeature } from './preview/agent/index.ts';
import { createDocFeature, docStateDirOf } from './sync/agent/index.ts';
import { createTerminalFeature } from './terminal/agent/index.ts';
import { isoTimestamp, runBridge } from './common/index.ts';
import { createPathJail, runAgent, type AgentFeature } from './agent/index.ts';

/**
 * The agent's composition root, beside `server/main.ts`: `agent/` only offers the plug-in contract
 * (runAgent, AgentFeature), and this file is the one place that knows the concrete features, so
 * no feature folder and `agent/` import each other in a cycle.
 */
async function main(): Promise<void> {
  const ctx = readProcessContext();
  if (ctx.argv[0] === 'bridge') {
    const socket = ctx.argv[ctx.argv.indexOf('--socket') + 1];
    const wait = ctx.argv.indexOf('--wait-ms');
    process.exit(await runBridge(socket, process.stdin, process.stdout, { waitMs: wait >= 0 ? Number(ctx.argv[wait + 1]) || 0 : 0 }));
  }
  const config = loadAgentConfig(ctx);
  const log = (event: string, fields?: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ time: isoTimestamp(), component: 'agent', event, ...fields })}\n`);
  // The workspace's listening ports (previews); the server's own key may dial only those.
  const ports = createPortsFeature({ agentPid: process.pid, root: config.root, intervalMs: 1000, log });
  const features: AgentFeature[] = [
    // Loopback only: the process driver's workspaces share the host's network.
    createForwardingFeature({ reverseHost: '127.0.0.1', dialTimeoutMs: config.limits.forwardDialTimeoutMs, log, refuseServerTarget: ports.refuseServerTarget }),
    ports,
    // A service's environment for `wharf up`: its process's /proc/<pid>/environ, and ours as the image layer.
    createServiceEnvFeature({ root: config.root, env: config.env }),
    createDeployAgentFeature({ root: config.root, shell: config.shell, env: config.env, followInRoot: (path) => createPathJail(config.root).follow(path), log }),
    createDocFeature({ root: config.root, stateDir: docStateDirOf(config), limits: config.limits }),
    createTerminalFeature({
      root: config.root,
      shell: config.shell,
      env: config.env,
      limits: {
        queueBytes: config.limits.terminalClientQueueBytes,
        scrollback: config.limits.terminalScrollbackLines,
        graceMs: config.limits.terminalGraceMs,
        killTimeoutMs: config.limits.terminalKillTimeoutMs,
        maxTerminals: config.limits.maxTerminals,
        maxFrameBytes: config.limits.maxFrameBytes,
        clients: { perLink: config.limits.terminalClientsPerLink, perTerminal: config.limits.terminalClientsPerTerminal, perAdmin: config.limits.terminalClientsPerAdmin },
      },
      log,
    }),
  ];
  const agent = await runAgent(config, features);
  const stop = () => {
    agent.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`wharf agent: ${err.message}\n`);
  process.exit(1);
});
