import { isFannedOutFrame } from '../envelope.ts';

export type DocAgentWriterOptions = {
  /** A held frame waits at most this long... */
  batchMs: number;
  /** ...or until this much is held. */
  batchMaxBytes: number;
  /** Writes encoded frames to the agent's channel: one frame, or several held ones in one buffer. */
  write(frames: Buffer): void;
};

/**
 * What one websocket's server sends the agent on its `wharf-doc` channel, in order. While the
 * agent says nobody outside this server's relay group has the document open, what the server
 * sends it only feeds the disk, so frames the server has already fanned out are held and sent
 * together: a burst of typing wakes the agent once, not once per keystroke. Any other frame goes
 * out at once, after what is held.
 */
export function createDocAgentWriter(options: DocAgentWriterOptions) {
  let agentMayWait = false;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (held.length === 0) return;
    const out = held.length === 1 ? held[0] : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    options.write(out);
  };

  return {
    /** Takes the agent's `audience` notice: whether anyone outside this server's group waits for what we send it. */
    setAgentMayWait(mayWait: boolean): void {
      agentMayWait = mayWait;
      if (!mayWait) flush();
    },
    write(frame: Buffer): void {
      if (agentMayWait && isFannedOutFrame(frame)) {
        held.push(frame);
        heldBytes += frame.length;
        if (heldBytes >= options.batchMaxBytes) flush();
        else timer ??= setTimeout(flush, options.batchMs);
        return;
      }
      flush();
      options.write(frame);
    },
    /** Sends what is held now: the other editors here already have it, so the agent (and the disk) must get it too. */
    flush,
  };
}

export type DocAgentWriter = ReturnType<typeof createDocAgentWriter>;
