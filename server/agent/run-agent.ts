import { chmod, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type ssh2 from 'ssh2';
import { isoTimestamp } from '../common/index.ts';
import type { AgentConfig } from '../config/index.ts';
import { createControlSubsystem } from './control.ts';
import { createFeatureStore } from './feature-store.ts';
import { createKeyStore, type KeyGrant } from './key-store.ts';
import type { SubsystemHandler } from './session.ts';
import { createAgentServer } from './ssh-server.ts';

/** A feature plugged into the agent: its subsystems, and what must be flushed on shutdown. */
export type AgentFeature = {
  subsystems?: Record<string, SubsystemHandler>;
  onConnection?: (client: ssh2.Connection, grant: KeyGrant) => void;
  shutdown?: () => Promise<void>;
};

export type RunningAgent = { stop(): Promise<void> };

function logLine(event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: isoTimestamp(), component: 'agent', event, ...fields })}\n`);
}

export async function runAgent(config: AgentConfig, features: AgentFeature[]): Promise<RunningAgent> {
  const keys = createKeyStore();
  await keys.loadAuthorizedKeysFile(config.authorizedKeysFile);
  const hostKey = await readFile(config.hostKeyFile, 'utf8');
  const store = createFeatureStore({ dir: config.storeDir, maxValueBytes: config.limits.storeMaxValueBytes, log: logLine });
  if (config.storeImportFile) {
    // Before listening: a server that sees the agent answer must also see the imported data.
    const imported = await store.importMissing(config.storeImportFile);
    if (imported.length > 0) logLine('store.imported', { keys: imported });
  }
  // A store write carries a whole value; the rest of a frame is a few short fields.
  const control = createControlSubsystem(keys, {
    store,
    maxFrameBytes: config.limits.storeMaxValueBytes + config.limits.maxControlFrameBytes,
    maxKeyTtlMs: config.limits.maxSessionKeyTtlMs,
  });
  const subsystems: Record<string, SubsystemHandler> = { 'wharf-control': control };
  for (const f of features) Object.assign(subsystems, f.subsystems ?? {});

  const agent = createAgentServer({
    hostKey,
    keys,
    process: { root: config.root, shell: config.shell, env: config.env },
    subsystems,
    onConnection: (client, grant) => {
      // A revoked session key also ends the connections it already opened.
      const unwatch = keys.watch(grant, () => client.end());
      client.once('close', unwatch);
      for (const f of features) f.onConnection?.(client, grant);
    },
    log: logLine,
    loginGraceMs: config.limits.sshLoginGraceMs,
    maxStartups: config.limits.sshMaxStartups,
  });

  await rm(config.socket, { force: true });
  const listener: Server = createServer((socket) => agent.injectSocket(socket));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(config.socket, () => resolve());
  });
  // Only the server (same user) may dial the agent; SSH auth still applies on top.
  await chmod(config.socket, 0o600);
  logLine('listening', { socket: config.socket, root: config.root });

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        listener.close();
        for (const f of features) await f.shutdown?.().catch((err: Error) => logLine('shutdown_error', { error: err.message }));
        await agent.close();
        await rm(config.socket, { force: true });
        logLine('stopped');
      })();
      return stopping;
    },
  };
}
