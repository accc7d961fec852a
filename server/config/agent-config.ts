import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProcessContext } from './load-config.ts';

export type AgentConfig = {
  /** Unix socket to listen on; absent in `bridge`-less stdio mode. */
  socket: string;
  root: string;
  hostKeyFile: string;
  authorizedKeysFile: string;
  home: string;
  shell: string;
  /** Base environment handed to processes in the workspace. */
  env: Record<string, string>;
  /** Feature data of the workspace (one JSON file per key): in its home's state, beside the documents' state. */
  storeDir: string;
  /** Feature data of an older layout to take into the store at start (`--import-store`, given by a driver). */
  storeImportFile: string | undefined;
  limits: {
    docFlushDelayMs: number;
    /** While someone types without pause, a document is still saved at least this often. */
    docFlushMaxWaitMs: number;
    maxDocBytes: number;
    maxFrameBytes: number;
    terminalGraceMs: number;
    terminalClientQueueBytes: number;
    terminalScrollbackLines: number;
    terminalKillTimeoutMs: number;
    maxTerminals: number;
    /** Attached terminal clients per share link, per terminal and of the admin (see the server's config). */
    terminalClientsPerLink: number;
    terminalClientsPerTerminal: number;
    terminalClientsPerAdmin: number;
    /** An SSH connection that has not authenticated this long is closed (`--login-grace-ms`). */
    sshLoginGraceMs: number;
    /** At most this many SSH connections may be unauthenticated at once (`--max-startups`). */
    sshMaxStartups: number;
    /** Longest life of a session key registered over the control channel (`--max-key-ttl-ms`; the server passes its own cap). */
    maxSessionKeyTtlMs: number;
    /** Largest control request frame besides a feature-store value (a few short fields). */
    maxControlFrameBytes: number;
    /** Largest value of one feature-store key, in bytes of JSON (`--store-max-bytes`). */
    storeMaxValueBytes: number;
    /** How long dialling a hybrid forward target inside the workspace may take (`--forward-dial-timeout-ms`). */
    forwardDialTimeoutMs: number;
  };
};

function pickShell(env: NodeJS.ProcessEnv): string {
  for (const candidate of [env.WHARF_SHELL, '/bin/bash', '/bin/sh']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  return '/bin/sh';
}

function readPositiveInteger(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`wharf agent: ${flag} must be a positive whole number (got "${raw}")`);
  return value;
}

export function loadAgentConfig(ctx: ProcessContext): AgentConfig {
  const { values } = parseArgs({
    args: ctx.argv,
    options: {
      socket: { type: 'string' },
      root: { type: 'string' },
      'host-key': { type: 'string' },
      'authorized-keys': { type: 'string' },
      home: { type: 'string' },
      'terminal-grace-ms': { type: 'string' },
      'max-doc-bytes': { type: 'string' },
      'login-grace-ms': { type: 'string' },
      'max-startups': { type: 'string' },
      'max-key-ttl-ms': { type: 'string' },
      'store-max-bytes': { type: 'string' },
      'forward-dial-timeout-ms': { type: 'string' },
      'import-store': { type: 'string' },
      'terminal-link-clients': { type: 'string' },
      'terminal-clients': { type: 'string' },
      'terminal-admin-clients': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  const required = (name: 'socket' | 'root' | 'host-key' | 'authorized-keys') => {
    const v = values[name];
    if (!v) throw new Error(`wharf agent: --${name} is required`);
    return v;
  };
  const root = required('root');
  const home = values.home ?? root;
  const shell = pickShell(ctx.env);
  return {
    socket: required('socket'),
    root,
    hostKeyFile: required('host-key'),
    authorizedKeysFile: required('authorized-keys'),
    home,
    shell,
    storeDir: join(home, '.cache', 'wharf', 'store'),
    storeImportFile: values['import-store'] || undefined,
    env: {
      PATH: ctx.env.PATH || '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      SHELL: shell,
      LANG: ctx.env.LANG || 'C.UTF-8',
      USER: ctx.env.USER || 'wharf',
      WHARF_WORKSPACE: root,
    },
    limits: {
      docFlushDelayMs: 20,
      docFlushMaxWaitMs: 50,
      maxDocBytes: Number(values['max-doc-bytes'] ?? 5 * 1024 * 1024),
      maxFrameBytes: 8 * 1024 * 1024,
      terminalGraceMs: Number(values['terminal-grace-ms'] ?? 3600_000),
      terminalClientQueueBytes: 1024 * 1024,
      terminalScrollbackLines: 1000,
      terminalKillTimeoutMs: 3000,
      maxTerminals: 64,
      terminalClientsPerLink: readPositiveInteger(values['terminal-link-clients'], 20, '--terminal-link-clients'),
      terminalClientsPerTerminal: readPositiveInteger(values['terminal-clients'], 50, '--terminal-clients'),
      terminalClientsPerAdmin: readPositiveInteger(values['terminal-admin-clients'], 200, '--terminal-admin-clients'),
      sshLoginGraceMs: readPositiveInteger(values['login-grace-ms'], 30_000, '--login-grace-ms'),
      sshMaxStartups: readPositiveInteger(values['max-startups'], 100, '--max-startups'),
      maxSessionKeyTtlMs: readPositiveInteger(values['max-key-ttl-ms'], 7 * 24 * 3600 * 1000, '--max-key-ttl-ms'),
      maxControlFrameBytes: 64 * 1024,
      storeMaxValueBytes: readPositiveInteger(values['store-max-bytes'], 4 * 1024 * 1024, '--store-max-bytes'),
      forwardDialTimeoutMs: readPositiveInteger(values['forward-dial-timeout-ms'], 10_000, '--forward-dial-timeout-ms'),
    },
  };
}
