// The files themselves, not their folders' index: those carry ssh2's key helpers and the server's
// configuration, and this program must load node:net alone.
import { runBridge } from './common/bridge.ts';
import { loadBridgeConfig } from './config/bridge-config.ts';

/**
 * The runtime's `bridge.mjs` (scripts/build-agent.mjs): what container drivers exec to reach the
 * agent. The same as `agent.mjs bridge`, without loading the agent: node starts it in about half
 * the time, and every connection to a container's agent starts one.
 */
const config = loadBridgeConfig();
if ('error' in config) {
  process.stderr.write(`${config.error}\n`);
  process.exit(2);
}
process.exit(await runBridge(config.socket, process.stdin, process.stdout, { waitMs: config.waitMs }));
