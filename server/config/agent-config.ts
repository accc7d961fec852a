import { existsSync } from 'node:fs';
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
  };
};

function pickShell(env: NodeJS.ProcessEnv): string {
  for (const candidate of [env.WHARF_SHELL, '/bin/bash', '/bin/sh']) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  return '/bin/sh';
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
    },
  };
}
