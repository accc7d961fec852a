import { PassThrough, type Readable } from 'node:stream';
import { createFrameDecoder, encodeFrame, fail, ok, type Result } from '../common/index.ts';
import type { AgentConnection } from '../workspace/index.ts';
import { DEPLOY_SUBSYSTEM } from './agent-feature.ts';
import type { PackSummary } from './pack.ts';

/** The server's side of the agent's `wharf-deploy` subsystem (see agent-feature.ts). */
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
          const response = JSON.parse(frame.toString('utf8')) as { ok: boolean; error?: string; files?: Record<string, string | null> };
          resolve(response.ok && response.files ? ok(response.files) : fail(response.error ?? 'the workspace agent refused the request'));
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
    channel.write(encodeFrame(Buffer.from(JSON.stringify({ op: 'read', paths, maxBytes }))));
  });
}

export type WorkspacePack = { stream: Readable; summary: Promise<Result<PackSummary, string>> };

/** Streams the packed context from the agent; a packing failure destroys the stream with its message. */
export async function openWorkspacePack(agent: AgentConnection, request: { context: string; patterns: string[]; prefix: string }): Promise<WorkspacePack> {
  const channel = await agent.subsystem(DEPLOY_SUBSYSTEM);
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  let outcome: Result<PackSummary, string> | undefined;
  let channelEnded = false;
  let settle: (r: Result<PackSummary, string>) => void = () => {};
  const summary = new Promise<Result<PackSummary, string>>((resolve) => (settle = resolve));

  const conclude = () => {
    if (!outcome) return;
    settle(outcome);
    if (!outcome.ok) out.destroy(new Error(`packing the workspace failed: ${outcome.error}`));
    else if (channelEnded) out.end();
  };
  let stderrText = '';
  channel.stderr.on('data', (chunk: Buffer) => {
    stderrText += chunk.toString('utf8');
    let nl;
    while ((nl = stderrText.indexOf('\n')) >= 0) {
      const line = stderrText.slice(0, nl);
      stderrText = stderrText.slice(nl + 1);
      try {
        const message = JSON.parse(line) as { type: string; message?: string } & PackSummary;
        if (message.type === 'summary') {
          const { type: _type, ...rest } = message;
          outcome ??= ok(rest as PackSummary);
        } else if (message.type === 'error') outcome ??= fail(message.message ?? 'unknown error');
      } catch {
        // not one of ours
      }
      conclude();
    }
  });
  channel.on('data', (chunk: Buffer) => {
    if (!out.write(chunk)) {
      channel.pause();
      out.once('drain', () => channel.resume());
    }
  });
  channel.on('end', () => {
    channelEnded = true;
    conclude();
  });
  channel.on('close', () => {
    channelEnded = true;
    outcome ??= fail('the workspace agent stopped while packing');
    conclude();
  });
  out.on('close', () => {
    if (!outcome) channel.close();
  });
  channel.write(encodeFrame(Buffer.from(JSON.stringify({ op: 'pack', ...request }))));
  return { stream: out, summary };
}
