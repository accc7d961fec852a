import { open } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentFeature, SubsystemContext } from '../agent/index.ts';
import { createFrameDecoder, encodeFrame } from '../common/index.ts';
import { createIgnoreMatcher } from './ignore-rules.ts';
import { DEFAULT_PACK_LIMITS, packContext } from './pack.ts';
import { validateRelativePath } from './plan.ts';

/**
 * The agent half of deploys: the control server never touches a workspace's disk, so it asks
 * the agent, over the `wharf-deploy` SSH subsystem, to read the manifest and to pack the
 * context. One JSON request frame per channel:
 *
 *   {op: "read", paths: [...], maxBytes}   → one JSON frame {ok, files: {path: text | null}}
 *   {op: "pack", context, patterns, prefix} → frames: "d"+tar bytes..., then "s"+summary JSON
 *                                            or "e"+{message} JSON (see servePack)
 */
export const DEPLOY_SUBSYSTEM = 'wharf-deploy';

export type DeployAgentRequest =
  | { op: 'read'; paths: string[]; maxBytes: number }
  | { op: 'pack'; context: string; patterns: string[]; prefix: string };

const MAX_REQUEST_BYTES = 256 * 1024;

function insideRoot(root: string, relative: string): string | undefined {
  const checked = validateRelativePath(relative, 'path');
  if (!checked.ok) return undefined;
  const full = resolve(root, checked.value);
  return full === root || full.startsWith(root + sep) ? full : undefined;
}

async function readLimited(path: string, maxBytes: number): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new Error(`${path} is not a file`);
    if (stats.size > maxBytes) throw new Error(`is larger than ${Math.round(maxBytes / 1024)} KiB`);
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function serveRead(stream: Duplex, root: string, request: Extract<DeployAgentRequest, { op: 'read' }>): Promise<void> {
  const files: Record<string, string | null> = {};
  for (const path of request.paths.slice(0, 16).map(String)) {
    const full = insideRoot(root, path);
    if (!full) {
      stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: `"${path}" is not a path inside the workspace` }))));
      return;
    }
    try {
      files[path] = await readLimited(full, Math.min(Number(request.maxBytes) || 0, 4 * 1024 * 1024));
    } catch (err) {
      stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: `${path}: ${(err as Error).message}` }))));
      return;
    }
  }
  stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: true, files }))));
}

/**
 * Everything goes in frames on the channel's main stream: `d` + tar bytes, then one `s` +
 * summary JSON or `e` + error JSON. (Not stderr: ssh2 1.17 can lose an extended-data write that
 * waits for window space after a main-stream write did, and a large tar always fills the window.)
 */
function servePack(stream: Duplex, root: string, request: Extract<DeployAgentRequest, { op: 'pack' }>): void {
  const frame = (type: string, payload: Buffer) => encodeFrame(Buffer.concat([Buffer.from(type), payload]));
  const finish = (type: 's' | 'e', message: Record<string, unknown>): void => {
    stream.end(frame(type, Buffer.from(JSON.stringify(message))));
  };
  const context = insideRoot(root, request.context || '.');
  if (!context) return finish('e', { message: `the context "${request.context}" is not a folder inside the workspace` });
  const patterns = Array.isArray(request.patterns) ? request.patterns.map(String) : [];
  const packed = packContext({ root: context, matcher: createIgnoreMatcher(patterns), prefix: String(request.prefix ?? ''), ...DEFAULT_PACK_LIMITS });
  packed.stream.on('error', () => {});
  packed.stream.on('data', (chunk: Buffer) => {
    if (!stream.write(frame('d', chunk))) {
      packed.stream.pause();
      stream.once('drain', () => packed.stream.resume());
    }
  });
  packed.summary.then(
    (summary) => finish('s', { ...summary }),
    (err: Error) => finish('e', { message: err.message }),
  );
  stream.on('close', () => packed.stream.destroy());
}

export function createDeployAgentFeature(options: { root: string }): AgentFeature {
  const root = resolve(options.root);
  return {
    subsystems: {
      [DEPLOY_SUBSYSTEM]: (stream: Duplex, context: SubsystemContext) => {
        if (context.grant.role !== 'admin') {
          stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: 'forbidden' }))));
          return;
        }
        let handled = false;
        const decoder = createFrameDecoder(MAX_REQUEST_BYTES, {
          onError: (e) => {
            handled = true;
            stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: e.message }))));
          },
          onFrame: (frame) => {
            if (handled) return;
            handled = true;
            let request: DeployAgentRequest;
            try {
              request = JSON.parse(frame.toString('utf8')) as DeployAgentRequest;
            } catch {
              stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: 'request is not JSON' }))));
              return;
            }
            if (request.op === 'read' && Array.isArray(request.paths)) {
              serveRead(stream, root, request).catch((err: Error) => stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: err.message })))));
            } else if (request.op === 'pack') servePack(stream, root, request);
            else stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: 'unknown op' }))));
          },
        });
        stream.on('data', (chunk: Buffer) => decoder.push(chunk));
        stream.on('error', () => {});
      },
    },
  };
}
