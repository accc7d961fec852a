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
 *   {op: "pack", context, patterns, prefix} → the tar on the channel, then JSON lines on its
 *                                            stderr: {type: "summary", ...} or {type: "error", message}
 */
export const DEPLOY_SUBSYSTEM = 'wharf-deploy';

export type DeployAgentRequest =
  | { op: 'read'; paths: string[]; maxBytes: number }
  | { op: 'pack'; context: string; patterns: string[]; prefix: string };

type ChannelWithStderr = Duplex & { stderr?: NodeJS.WritableStream };

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

function servePack(stream: ChannelWithStderr, root: string, request: Extract<DeployAgentRequest, { op: 'pack' }>): void {
  const report = (message: Record<string, unknown>) => stream.stderr?.write(`${JSON.stringify(message)}\n`);
  const context = insideRoot(root, request.context || '.');
  if (!context) {
    report({ type: 'error', message: `the context "${request.context}" is not a folder inside the workspace` });
    stream.end();
    return;
  }
  const patterns = Array.isArray(request.patterns) ? request.patterns.map(String) : [];
  const packed = packContext({ root: context, matcher: createIgnoreMatcher(patterns), prefix: String(request.prefix ?? ''), ...DEFAULT_PACK_LIMITS });
  packed.stream.on('error', () => {});
  packed.stream.pipe(stream, { end: false });
  packed.summary.then(
    (summary) => {
      report({ type: 'summary', ...summary });
      stream.end();
    },
    (err: Error) => {
      packed.stream.unpipe(stream);
      report({ type: 'error', message: err.message });
      // Closing without the end-of-archive marker: the half-sent tar must not look complete.
      stream.destroy();
    },
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
            } else if (request.op === 'pack') servePack(stream as ChannelWithStderr, root, request);
            else stream.end(encodeFrame(Buffer.from(JSON.stringify({ ok: false, error: 'unknown op' }))));
          },
        });
        stream.on('data', (chunk: Buffer) => decoder.push(chunk));
        stream.on('error', () => {});
      },
    },
  };
}
