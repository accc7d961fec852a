import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration, type ProcessContext } from './load-config.ts';

/** What the `wharf` helper needs from its environment, read once at start-up. */
export type CliConfig = {
  /** Arguments after `wharf`. */
  argv: string[];
  /** `$XDG_CONFIG_HOME/wharf`, or `~/.config/wharf`. */
  configDir: string;
  /** `$XDG_STATE_HOME/wharf`, or `~/.local/state/wharf`: the logs and pid files of `wharf up --detach`. */
  stateDir: string;
  /**
   * How this helper was started, to start it again in the background (`wharf up --detach`): the
   * Node executable, its options and the script (bin/wharf.js, wharf.cjs) — no script for a
   * self-contained executable, whose argv[1] is the executable itself.
   */
  self: { command: string; args: string[] };
  /**
   * Where `wharf agent install-runtime` looks for the built agent, first match wins:
   * `WHARF_AGENT_BUNDLE`, else `agent/` beside the running helper script (dist/wharf.mjs →
   * dist/agent, as in the wharf image), else the checkout's dist/agent.
   */
  agentBundles: string[];
  /** This helper's node, which `wharf agent install-runtime` copies as the runtime's. */
  nodePath: string;
  /** Where `wharf login` stores `{url, token}` (mode 0600). */
  credentialsFile: string;
  /** The user's OpenSSH folder, searched for a default public key by `wharf proxy`. */
  sshDir: string;
  /** `WHARF_URL` / `WHARF_TOKEN` win over the stored credentials (CI jobs, runner images). */
  override: { url: string | undefined; token: string | undefined };
  /** Terminal type requested for an interactive pty. */
  term: string;
  /** The folder `wharf deploy` / `wharf destroy` deploy from. */
  cwd: string;
  /** The helper's environment: local deploy commands inherit it, and it may set OKTETO_FORCE_REMOTE. */
  environment: Record<string, string>;
  limits: {
    /** A plain API request (not a stream) gives up after this long (`WHARF_REQUEST_TIMEOUT`: a slow link may need more). */
    requestTimeoutMs: number;
    /** Life of the throw-away key `wharf ssh` registers; it only has to outlive authentication. */
    sessionKeyTtlSeconds: number;
    /** Life of the user's key registered by `wharf proxy`. */
    proxyKeyTtlSeconds: number;
    /** Time allowed for the SSH handshake with the workspace agent through the tunnel. */
    sshReadyTimeoutMs: number;
    /** SSH keepalives through the tunnel: they notice a dead connection, and keep proxies from closing an idle one. */
    sshKeepaliveIntervalMs: number;
    /** `wharf up`: a dead link is noticed within keepaliveIntervalMs × keepaliveCountMax (10 s), then made again with back-off. */
    hybrid: {
      readyTimeoutMs: number;
      keepaliveIntervalMs: number;
      keepaliveCountMax: number;
      keyTtlSeconds: number;
      backoff: { initialMs: number; maxMs: number };
      killGraceMs: number;
    };
  };
};

export function loadCliConfig(ctx: ProcessContext): CliConfig {
  const env = ctx.env;
  const home = env.HOME || homedir();
  const configHome = env.XDG_CONFIG_HOME || join(home, '.config');
  const configDir = join(configHome, 'wharf');
  return {
    argv: ctx.argv,
    configDir,
    stateDir: join(env.XDG_STATE_HOME || join(home, '.local', 'state'), 'wharf'),
    self: {
      command: process.execPath,
      args: [...process.execArgv, ...(process.argv[1] && process.argv[1] !== process.execPath ? [process.argv[1]] : [])],
    },
    agentBundles: env.WHARF_AGENT_BUNDLE
      ? [env.WHARF_AGENT_BUNDLE]
      : [...(process.argv[1] ? [join(dirname(process.argv[1]), 'agent')] : []), fileURLToPath(new URL('../../dist/agent', import.meta.url))],
    nodePath: process.execPath,
    credentialsFile: join(configDir, 'credentials.json'),
    sshDir: join(home, '.ssh'),
    override: { url: env.WHARF_URL || undefined, token: env.WHARF_TOKEN || undefined },
    term: env.TERM || 'xterm-256color',
    cwd: process.cwd(),
    environment: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string')),
    limits: {
      requestTimeoutMs: parseDuration(env.WHARF_REQUEST_TIMEOUT || '30s', 'WHARF_REQUEST_TIMEOUT'),
      sessionKeyTtlSeconds: 300,
      proxyKeyTtlSeconds: 300,
      sshReadyTimeoutMs: 20_000,
      sshKeepaliveIntervalMs: 15_000,
      hybrid: {
        readyTimeoutMs: 20_000,
        keepaliveIntervalMs: 5_000,
        keepaliveCountMax: 2,
        keyTtlSeconds: 300,
        backoff: { initialMs: 500, maxMs: 8_000 },
        killGraceMs: 5_000,
      },
    },
  };
}
