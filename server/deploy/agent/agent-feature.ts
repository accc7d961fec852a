import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentFeature, SubsystemContext } from '../../agent/index.ts';
import { createFrameDecoder, encodeFrame } from '../../common/index.ts';
import type { PathResolver } from '../../okteto/index.ts';
import { DEPLOY_SUBSYSTEM, type DeployAgentRequest, type DeployReadReply, type DeployRunExit } from '../index.ts';
import { createRunBoard } from './run-board.ts';

/**
 * The agent half of deploys: serves the `wharf-deploy` subsystem (../protocol.ts) inside the
 * workspace, reading the manifest, packing the context and running a local deploy's commands
 * for the control server, which never touches a workspace's disk.
 */
export type DeployAgentOptions = {
  root: string;
  /**
   * Follows a path inside the workspace as the SFTP jail does (given by the agent's composition
   * root, so that this feature and server/agent do not import each other).
   */
  followInRoot: PathResolver;
  /** Shell and base environment of workspace processes (the agent's own). */
  shell: string;
  env: Record<string, string>;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

// A re-hosted run carries its log so far (at most the server's live log bound, 1 MiB by default).
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

const replyFrame = (reply: DeployReadReply): Buffer => encodeFrame(Buffer.from(JSON.stringify(reply)));

// server/okteto (the packer and its worker thread, the ignore rules, and through its index the
// manifest parser with yaml, which the agent never calls) is loaded by the first deploy request,
// not at the agent's start: a feature most workspaces use now and then. With live editing's
// documents made lazy alike, an idle agent's RSS went 50.5 -> 49.8 MiB. esbuild keeps a dynamic
// import of a bundled module lazy.
let okteto: Promise<typeof import('../../okteto/index.ts')> | undefined;
const loadOkteto = () => (okteto ??= import('../../okteto/index.ts'));

/** The real path of a request's path, or undefined when it is (or leads, by a symlink) outside the root. */
async function insideRoot(follow: PathResolver, root: string, relative: string): Promise<string | undefined> {
  const { resolveInside } = await loadOkteto();
  const resolved = await resolveInside(root, relative, 'path', follow);
  return resolved.ok ? resolved.value : undefined;
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

async function serveRead(stream: Duplex, follow: PathResolver, root: string, request: Extract<DeployAgentRequest, { op: 'read' }>): Promise<void> {
  const files: Record<string, string | null> = {};
  for (const path of request.paths.slice(0, 16).map(String)) {
    const full = await insideRoot(follow, root, path);
    if (!full) {
      stream.end(replyFrame({ ok: false, error: `"${path}" is not a path inside the workspace` }));
      return;
    }
    try {
      files[path] = await readLimited(full, Math.min(Number(request.maxBytes) || 0, 4 * 1024 * 1024));
    } catch (err) {
      stream.end(replyFrame({ ok: false, error: `${path}: ${(err as Error).message}` }));
      return;
    }
  }
  stream.end(replyFrame({ ok: true, files }));
}

/**
 * Everything goes in frames on the channel's main stream: `d` + tar bytes, then one `s` +
 * summary JSON or `e` + error JSON. (Not stderr: ssh2 1.17 can lose an extended-data write that
 * waits for window space after a main-stream write did, and a large tar always fills the window.)
 */
async function servePack(stream: Duplex, follow: PathResolver, root: string, request: Extract<DeployAgentRequest, { op: 'pack' }>): Promise<void> {
  const frame = (type: string, payload: Buffer) => encodeFrame(Buffer.concat([Buffer.from(type), payload]));
  const finish = (type: 's' | 'e', message: Record<string, unknown>): void => {
    stream.end(frame(type, Buffer.from(JSON.stringify(message))));
  };
  const context = await insideRoot(follow, root, request.context || '.');
  // The channel closed while the path was resolved: there is nobody to pack for.
  if (stream.destroyed) return;
  if (!context) return finish('e', { message: `the context "${request.context}" is not a folder inside the workspace` });
  const patterns = Array.isArray(request.patterns) ? request.patterns.map(String) : [];
  // Loaded already: insideRoot above needed it.
  const { createIgnoreMatcher, DEFAULT_PACK_LIMITS, packContext } = await loadOkteto();
  if (stream.destroyed) return;
  const packed = packContext({ root: context, matcher: createIgnoreMatcher(patterns), prefix: String(request.prefix ?? ''), ...DEFAULT_PACK_LIMITS });
  packed.stream.on('error', () => {});
  packed.stream.on('data', (chunk: Buffer) => {
    const framed = frame('d', chunk);
    // The frame is a copy: the packer may fill this block again.
    packed.recycle(chunk);
    if (!stream.write(framed)) {
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

/**
 * One command of a local (deprecated) deploy. Output comes back framed on the main stream for
 * the same reason as the pack stream: ssh2 can drop stderr queued behind a full window, which a
 * command printing a lot to stdout and a little to stderr triggers.
 */
async function serveRun(stream: Duplex, options: DeployAgentOptions, root: string, request: Extract<DeployAgentRequest, { op: 'run' }>): Promise<void> {
  const frame = (type: string, payload: Buffer) => encodeFrame(Buffer.concat([Buffer.from(type), payload]));
  const cwd = await insideRoot(options.followInRoot, root, request.cwd || '.');
  if (stream.destroyed) return;
  const env = { ...options.env, ...Object.fromEntries(Object.entries(request.env ?? {}).map(([k, v]) => [k, String(v)])) };
  if (!cwd) {
    stream.end(frame('x', Buffer.from(JSON.stringify({ code: 125, error: `"${request.cwd}" is not a folder inside the workspace` } satisfies DeployRunExit))));
    return;
  }
  const child = spawn(options.shell, ['-c', String(request.command)], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const forward = (type: string) => (chunk: Buffer) => {
    if (!stream.write(frame(type, chunk))) {
      child.stdout?.pause();
      child.stderr?.pause();
      stream.once('drain', () => {
        child.stdout?.resume();
        child.stderr?.resume();
      });
    }
  };
  child.stdout.on('data', forward('o'));
  child.stderr.on('data', forward('e'));
  let spawnError: string | undefined;
  child.on('error', (err) => (spawnError = `cannot start ${options.shell}: ${err.message}`));
  child.on('close', (code, signal) => {
    const number = signal ? osConstants.signals[signal as keyof typeof osConstants.signals] : undefined;
    const exit = spawnError ? 127 : code ?? (number ? 128 + number : 1);
    stream.end(frame('x', Buffer.from(JSON.stringify({ code: exit, error: spawnError } satisfies DeployRunExit))));
  });
  // The server went away (cancelled run): stop the whole process group.
  stream.on('close', () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

export function createDeployAgentFeature(options: DeployAgentOptions): AgentFeature {
  const root = resolve(options.root);
  const board = createRunBoard({ log: options.log });
  return {
    subsystems: {
      [DEPLOY_SUBSYSTEM]: (stream: Duplex, context: SubsystemContext) => {
        if (context.grant.role !== 'admin') {
          stream.end(replyFrame({ ok: false, error: 'forbidden' }));
          return;
        }
        let handled = false;
        const decoder = createFrameDecoder(MAX_REQUEST_BYTES, {
          onError: (e) => {
            handled = true;
            stream.end(replyFrame({ ok: false, error: e.message }));
          },
          onFrame: (frame) => {
            if (handled) return;
            handled = true;
            let request: DeployAgentRequest;
            try {
              request = JSON.parse(frame.toString('utf8')) as DeployAgentRequest;
            } catch {
              stream.end(replyFrame({ ok: false, error: 'request is not JSON' }));
              return;
            }
            const fatal = (err: Error) => stream.end(replyFrame({ ok: false, error: err.message }));
            if (request.op === 'read' && Array.isArray(request.paths)) {
              serveRead(stream, options.followInRoot, root, request).catch(fatal);
            } else if (request.op === 'pack') servePack(stream, options.followInRoot, root, request).catch(fatal);
            else if (request.op === 'run' && typeof request.command === 'string') serveRun(stream, options, root, request).catch(fatal);
            else if (board.isBoardOp(request.op)) board.serve(stream, request as Parameters<typeof board.serve>[1]);
            else stream.end(replyFrame({ ok: false, error: 'unknown op' }));
          },
        });
        // After its request a channel's bytes are the op's own (a hosted run's events).
        stream.on('data', (chunk: Buffer) => {
          if (!handled) decoder.push(chunk);
        });
        stream.on('error', () => {});
      },
    },
  };
}
