import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentFeature } from '../../agent/index.ts';
import type { AgentConfig } from '../../config/index.ts';
import { createDocManager } from './doc-manager.ts';
import { createDocStateStore } from './doc-state-store.ts';
import { createDocSubsystem } from './doc-subsystem.ts';
import { DOC_SUBSYSTEM } from '../envelope.ts';
import { createGitignoreMatcher } from './gitignore-matcher.ts';
import { isInside } from './safe-path.ts';
import { createWorkspaceWatcher } from './workspace-watcher.ts';

export type DocFeatureOptions = {
  root: string;
  /** Where the CRDT state of documents is kept: outside the workspace, so nobody commits it. */
  stateDir: string;
  limits: Pick<AgentConfig['limits'], 'docFlushDelayMs' | 'docFlushMaxWaitMs' | 'maxDocBytes' | 'maxFrameBytes'>;
  log?: (event: string, fields?: Record<string, unknown>) => void;
};

function logToStderr(event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'agent.docs', event, ...fields })}\n`);
}

/** Where a workspace agent keeps document state by default: its home's cache. */
export function docStateDirOf(config: Pick<AgentConfig, 'home'>): string {
  return join(config.home, '.cache', 'wharf', 'docs');
}

/** Live editing inside the agent: the `wharf-doc` subsystem, and saving every open document on shutdown. */
export function createDocFeature(options: DocFeatureOptions): AgentFeature {
  const log = options.log ?? logToStderr;
  const root = realpathSync(options.root);
  const matcher = createGitignoreMatcher(root);
  const manager = createDocManager({
    root,
    flushDelayMs: options.limits.docFlushDelayMs,
    flushMaxWaitMs: options.limits.docFlushMaxWaitMs,
    maxDocBytes: options.limits.maxDocBytes,
    store: createDocStateStore(options.stateDir),
    matcher,
    log,
    startWatcher: (onEvent) =>
      createWorkspaceWatcher({
        root,
        matcher,
        isExcluded: (path) => isInside(options.stateDir, path),
        onEvent,
        onError: (err) => log('watch.error', { error: err.message }),
      }),
  });
  return {
    subsystems: {
      [DOC_SUBSYSTEM]: createDocSubsystem({
        manager,
        maxFrameBytes: options.limits.maxFrameBytes,
        maxQueuedBytes: 2 * options.limits.maxFrameBytes,
      }),
    },
    shutdown: () => manager.shutdown({ code: 'unavailable', message: 'the workspace agent is stopping' }),
  };
}
