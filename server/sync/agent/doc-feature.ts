import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentFeature } from '../../agent/index.ts';
import { isoTimestamp } from '../../common/index.ts';
import type { AgentConfig } from '../../config/index.ts';
import { DOC_SUBSYSTEM } from '../envelope.ts';
import type { DocService } from './doc-service.ts';

export type DocFeatureOptions = {
  root: string;
  /** Where the CRDT state of documents is kept: outside the workspace, so nobody commits it. */
  stateDir: string;
  limits: Pick<AgentConfig['limits'], 'docFlushDelayMs' | 'docFlushMaxWaitMs' | 'maxDocBytes' | 'maxFrameBytes'>;
  log?: (event: string, fields?: Record<string, unknown>) => void;
};

function logToStderr(event: string, fields: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: isoTimestamp(), component: 'agent.docs', event, ...fields })}\n`);
}

/** Where a workspace agent keeps document state by default: its home's cache. */
export function docStateDirOf(config: Pick<AgentConfig, 'home'>): string {
  return join(config.home, '.cache', 'wharf', 'docs');
}

/**
 * Live editing inside the agent: the `wharf-doc` subsystem, and saving every open document on
 * shutdown. The documents' code (Yjs and its protocols, which load node's webcrypto; chokidar;
 * the .gitignore rules) is loaded when the first document is opened, not at the agent's start:
 * most agents serve files, terminals and forwards for long stretches with no document open.
 * esbuild keeps a dynamic import of a bundled module lazy.
 */
export function createDocFeature(options: DocFeatureOptions): AgentFeature {
  const log = options.log ?? logToStderr;
  // At start, so that a workspace root that cannot be resolved fails the agent's start as before.
  const root = realpathSync(options.root);
  let service: Promise<DocService> | undefined;
  const load = () => (service ??= import('./doc-service.ts').then((m) => m.createDocService({ ...options, root, log })));
  return {
    subsystems: {
      [DOC_SUBSYSTEM]: (stream, context) => {
        stream.on('error', () => {});
        load().then(
          // A channel closed while the code loaded has nobody to serve; its data waits, unread, meanwhile.
          (docs) => { if (!stream.destroyed) docs.subsystem(stream, context); },
          (err: Error) => {
            log('docs.load_failed', { error: err.message });
            stream.destroy();
          },
        );
      },
    },
    shutdown: async () => {
      if (service) await (await service).shutdown();
    },
  };
}
