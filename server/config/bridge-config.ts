/**
 * The runtime bridge's arguments (server/agent-bridge-main.ts): `--socket <path> [--wait-ms <ms>]`.
 * Its own file with no imports, so the bridge program loads nothing but node:net.
 */
export type BridgeConfig = { socket: string; waitMs: number };

export function loadBridgeConfig(argv: string[] = process.argv.slice(2)): BridgeConfig | { error: string } {
  const valueOf = (name: string) => {
    const at = argv.indexOf(name);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const socket = valueOf('--socket');
  const waitMs = Number(valueOf('--wait-ms') ?? 0);
  if (!socket) return { error: 'usage: bridge.mjs --socket <path> [--wait-ms <ms>]' };
  if (!Number.isFinite(waitMs) || waitMs < 0) return { error: `--wait-ms must be a number of milliseconds, got "${valueOf('--wait-ms')}"` };
  return { socket, waitMs };
}
