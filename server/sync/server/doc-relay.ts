import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { RelayMembership } from '../envelope.ts';

/** One browser socket of a document, as this server's relay group sees it. */
export type RelayMember = {
  /** What the agent is told in the `open` request. */
  readonly membership: RelayMembership;
  /** Whether any other socket of this server has the same document open. */
  readonly hasOthers: boolean;
  /**
   * Sends an already validated message to the group's other sockets and returns the group's
   * version, which tells the agent who got it.
   */
  fanOut(message: Uint8Array): number;
  leave(): void;
};

type Group = { id: string; version: number; members: Set<Member> };
type Member = { socket: WebSocket; onLagging: () => void };

export type DocRelayOptions = {
  /** A socket with more than this waiting to be sent is closed instead of being sent more. */
  maxBufferedBytes: number;
};

/**
 * Which of this server's websockets have which document open: who is connected, never what the
 * document holds. A keystroke reaches the other editors on this server straight from here, while
 * the agent (which holds the document) relays it only to editors elsewhere. Groups are keyed by
 * the path as requested: two spellings of one file form two groups, and the agent, which knows
 * they are one document, relays between them.
 */
export function createDocRelay(options: DocRelayOptions) {
  const groups = new Map<string, Group>();

  return {
    join(key: string, socket: WebSocket, onLagging: () => void): RelayMember {
      let group = groups.get(key);
      if (!group) {
        group = { id: randomUUID(), version: 0, members: new Set() };
        groups.set(key, group);
      }
      const joined = group;
      const me: Member = { socket, onLagging };
      joined.version += 1;
      joined.members.add(me);
      const membership = { group: joined.id, member: joined.version };
      return {
        membership,
        get hasOthers() {
          return joined.members.size > 1;
        },
        fanOut(message) {
          for (const other of joined.members) {
            if (other === me) continue;
            const ws = other.socket;
            if (ws.readyState !== ws.OPEN) continue;
            // The agent drops a connection that falls this far behind; so does the direct path.
            if (ws.bufferedAmount > options.maxBufferedBytes) other.onLagging();
            else ws.send(message, { binary: true });
          }
          return joined.version;
        },
        leave() {
          if (!joined.members.delete(me)) return;
          if (joined.members.size === 0 && groups.get(key) === joined) groups.delete(key);
        },
      };
    },
  };
}

export type DocRelay = ReturnType<typeof createDocRelay>;
