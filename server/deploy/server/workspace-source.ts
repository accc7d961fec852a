import { PassThrough, type Readable } from 'node:stream';
import { createFrameDecoder, encodeFrame, fail, ok, type Result } from '../../common/index.ts';
import type { AgentConnection } from '../../workspace/index.ts';
import type { PackSummary } from '../../okteto/index.ts';
import { DEPLOY_SUBSYSTEM, type DeployAgentRequest, type DeployReadReply, type DeployRunExit } from '../index.ts';

/** The server's side of the agent's `wharf-deploy` subsystem (see ../protocol.ts). */
export async function readWorkspaceFiles(agent: AgentConnection, paths: string[], maxBytes: number): Promise<Result<Record<string, string | null>, string>> {
  const channel = await agent.subsystem(DEPLOY_SUBSYSTEM);
  return new Promise((resolve) => {
    let answered = false;
    const decoder = createFrameDecoder(16 * 1024 * 1024, {
      onError: (e) => {
        answered = true;
        resolve(fail(e.message));
      },
      onFrame: (frame) => {
        answered = true;
        try {
          const response = JSON.parse(frame.toString('utf8')) as DeployReadReply;
          resolve(response.ok && response.files ? ok(response.files) : fail(('error' in response ? response.error : undefined) ?? 'the workspace agent refused the request'));
        } catch {
          resolve(fail('the workspace agent sent an unreadable answer'));
        }
        channel.end();
      },
    });
    channel.on('data', (chunk: Buffer) => decoder.push(chunk));
    channel.on('close', () => {
      if (!answered) resolve(fail('the workspace agent closed the connection without answering (is it an older agent without deploy support?)'));
    });
    channel.write(encodeFrame(Buffer.from(JSON.stringify({ op: 'read', paths, maxBytes } satisfies DeployAgentRequest))));
  });
}

export type WorkspacePack = { stream: Readable; summary: Promise<Result<PackSummary, string>> };

/** Frames of the packed context: tar blocks are at most this big (the packer sends 256 KiB). */
const MAX_PACK_FRAME = 8 * 1024 * 1024;

/** Streams the packed context from the agent; a packing failure destroys the stream with its message. */
export async function openWorkspacePack(agent: AgentConnection, request: { context: string; patterns: string[]; prefix: string }): Promise<WorkspacePack> {
  const channel = await agent.subsystem(DEPLOY_SUBSYSTEM);
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  let outcome: Result<PackSummary, string> | undefined;
  let settle: (r: Result<PackSummary, string>) => void = () => {};
  const summary = new Promise<Result<PackSummary, string>>((resolve) => (settle = resolve));

  const conclude = (result: Result<PackSummary, string>) => {
    if (outcome) return;
    outcome = result;
    settle(result);
    if (result.ok) out.end();
    else out.destroy(new Error(`packing the workspace failed: ${result.error}`));
    channel.close();
  };
  const decoder = createFrameDecoder(MAX_PACK_FRAME, {
    onError: (e) => conclude(fail(`the workspace agent sent a broken stream: ${e.message}`)),
    onFrame: (frame) => {
      const type = String.fromCharCode(frame[0]);
      const body = frame.subarray(1);
      if (type === 'd') {
        if (!out.write(body)) {
          channel.pause();
          out.once('drain', () => channel.resume());
        }
        return;
      }
      let message: Record<string, unknown> = {};
      try {
        message = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return conclude(fail('the workspace agent sent an unreadable summary'));
      }
      if (type === 's') conclude(ok(message as unknown as PackSummary));
      else conclude(fail(typeof message.message === 'string' ? message.message : 'unknown error'));
    },
  });
  channel.on('data', (chunk: Buffer) => decoder.push(chunk));
  // Only a channel that ends without its summary frame is a failure; 'end' comes after every
  // frame has been read (ssh2 ends the stream on close as well).
  channel.on('end', () => conclude(fail('the workspace agent stopped while packing')));
  out.on('close', () => {
    if (!outcome) channel.close();
  });
  channel.write(encodeFrame(Buffer.from(JSON.stringify({ op: 'pack', ...request } satisfies DeployAgentRequest))));
  return { stream: out, summary };
}

/**
 * Runs one command inside the workspace through the agent (`run` op), passing its output on as
 * it comes; resolves to its exit code (128+n for a signal). Aborting closes the channel, which
 * makes the agent stop the command.
 */
export async function runInWorkspace(
  agent: AgentConnection,
  input: { command: string; cwd: string; env: Record<string, string> },
  onOutput: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
  signal: AbortSignal,
): Promise<number> {
  const channel = await agent.subsystem(DEPLOY_SUBSYSTEM);
  return new Promise((resolve) => {
    let code: number | undefined;
    const abort = () => channel.close();
    signal.addEventListener('abort', abort, { once: true });
    const decoder = createFrameDecoder(MAX_PACK_FRAME, {
      onError: () => channel.close(),
      onFrame: (frame) => {
        const type = String.fromCharCode(frame[0]);
        const body = frame.subarray(1);
        if (type === 'o') onOutput('stdout', body);
        else if (type === 'e') onOutput('stderr', body);
        else if (type === 'x') {
          try {
            const exit = JSON.parse(body.toString('utf8')) as Partial<DeployRunExit>;
            if (exit.error) onOutput('stderr', Buffer.from(`wharf: ${exit.error}\n`));
            code = typeof exit.code === 'number' ? exit.code : 1;
          } catch {
            code = 1;
          }
        }
      },
    });
    channel.on('data', (chunk: Buffer) => decoder.push(chunk));
    channel.on('end', () => {
      signal.removeEventListener('abort', abort);
      // No exit frame: the agent (or the connection to it) went away mid-command.
      resolve(code ?? 255);
    });
    channel.write(encodeFrame(Buffer.from(JSON.stringify({ op: 'run', ...input } satisfies DeployAgentRequest))));
  });
}
