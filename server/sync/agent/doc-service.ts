import type { AgentFeature, SubsystemHandler } from '../../agent/index.ts';
import { createDocManager } from './doc-manager.ts';
import { createDocStateStore } from './doc-state-store.ts';
import { createDocSubsystem } from './doc-subsystem.ts';
import type { DocFeatureOptions } from './doc-feature.ts';
import { createGitignoreMatcher } from './gitignore-matcher.ts';
import { isInside } from './safe-path.ts';
import { createWorkspaceWatcher } from './workspace-watcher.ts';

export type DocService = { subsystem: SubsystemHandler; shutdown: NonNullable<AgentFeature['shutdown']> };

/**
 * The documents, their files and the watcher behind the `wharf-doc` subsystem: what doc-feature.ts
 * loads when the first document is opened (Yjs and its protocols, chokidar, the .gitignore rules).
 */
export function createDocService(options: DocFeatureOptions & { root: string; log: NonNullable<DocFeatureOptions['log']> }): DocService {
  const { root, log } = options;
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
    subsystem: createDocSubsystem({
      manager,
      maxFrameBytes: options.limits.maxFrameBytes,
      maxQueuedBytes: 2 * options.limits.maxFrameBytes,
    }),
    shutdown: () => manager.shutdown({ code: 'unavailable', message: 'the workspace agent is stopping' }),
  };
}
