import type { Duplex } from 'node:stream';
import { createFrameDecoder, encodeFrame, fail, ok, type DeployEvent, type DeployRun, type Result } from '../../common/index.ts';
import type { AgentConnection } from '../../workspace/index.ts';
import { DEPLOY_SUBSYSTEM, type BoardReply, type BoardRequest, type HostMessage } from '../index.ts';

/**
 * The server's side of the agent's run board (../protocol.ts): the replica that runs a deploy
 * hosts it there; every replica reads, follows and cancels runs through it.
 */

const MAX_FRAME = 16 * 1024 * 1024;

type Channel = Duplex & { close?: () => void };

/** Opens a board channel: the first frame back is the BoardReply, later ones HostMessages. */
async function open(agent: AgentConnection, request: BoardRequest, onMessage?: (message: HostMessage) => void): Promise<{ reply: BoardReply; channel: Channel }> {
  const channel = (await agent.subsystem(DEPLOY_SUBSYSTEM)) as Channel;
  return new Promise((resolve) => {
    let reply: BoardReply | undefined;
    const answer = (r: BoardReply) => {
      if (reply) return;
      reply = r;
      resolve({ reply: r, channel });
    };
    const decoder = createFrameDecoder(MAX_FRAME, {
      onError: (e) => {
        answer({ ok: false, error: `the workspace agent sent a broken stream: ${e.message}` });
        channel.destroy();
      },
      onFrame: (data) => {
        let message: unknown;
        try {
          message = JSON.parse(data.toString('utf8'));
        } catch {
          return answer({ ok: false, error: 'the workspace agent sent an unreadable answer' });
        }
        if (!reply) answer(message as BoardReply);
        else onMessage?.(message as HostMessage);
      },
    });
    channel.on('data', (chunk: Buffer) => decoder.push(chunk));
    channel.on('error', () => {});
    // The agent ended its side (a watch after `done`): end ours, so the channel closes.
    channel.on('end', () => channel.end());
    channel.on('close', () => answer({ ok: false, error: 'the workspace agent closed the connection without answering (is it an older agent without the run board?)' }));
    channel.write(encodeFrame(Buffer.from(JSON.stringify(request))));
  });
}

/** One question, one answer. */
export async function askBoard(agent: AgentConnection, request: Exclude<BoardRequest, { op: 'host' | 'watch' }>): Promise<BoardReply> {
  const { reply, channel } = await open(agent, request);
  channel.end();
  return reply;
}

export type HostedRun = {
  /** Passes an event (already timed) or the run's new summary on to the board. */
  send(message: HostMessage): void;
  /** Ends hosting: after the `done` event and the final summary, so the run is not "interrupted". */
  end(): void;
  /** Resolves when the channel closes, for whatever reason. */
  closed: Promise<void>;
};

/**
 * Hosts a run on the board: refused (`conflict`, the id of the run in progress) when the
 * workspace has another one, which makes "one run per workspace" hold across replicas.
 */
export async function hostRun(
  agent: AgentConnection,
  input: { run: DeployRun; events: DeployEvent[]; retentionMs: number; maxOutputBytes: number },
  onCancel: () => void,
): Promise<Result<HostedRun, { error: string; conflict?: string }>> {
  const { reply, channel } = await open(agent, { op: 'host', ...input }, (message) => {
    if (message.t === 'cancel') onCancel();
  });
  if (!reply.ok) {
    channel.destroy();
    return fail({ error: reply.error, conflict: reply.conflict });
  }
  const closed = new Promise<void>((resolve) => {
    if (channel.destroyed) resolve();
    else channel.once('close', () => resolve());
  });
  return ok({
    send(message) {
      if (!channel.destroyed && channel.writable) channel.write(encodeFrame(Buffer.from(JSON.stringify(message))));
    },
    end() {
      if (!channel.destroyed) channel.end();
    },
    closed,
  });
}

export type BoardWatch = { run: DeployRun; stop: () => void; ended: Promise<void> };

/** Follows a run on the board: every event (replay first) to `listener`; undefined when the board does not have it. */
export async function watchRun(agent: AgentConnection, id: string, listener: (event: DeployEvent) => void): Promise<BoardWatch | undefined> {
  const { reply, channel } = await open(agent, { op: 'watch', id }, (message) => {
    if (message.t === 'event') listener(message.event);
  });
  if (!reply.ok || !reply.run) {
    channel.destroy();
    return undefined;
  }
  const ended = new Promise<void>((resolve) => {
    if (channel.destroyed) resolve();
    else channel.once('close', () => resolve());
  });
  return { run: reply.run, stop: () => channel.destroy(), ended };
}
