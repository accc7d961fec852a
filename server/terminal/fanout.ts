import type { Snapshot, StreamEvent } from './protocol.ts';

/**
 * Where one attached client's share of a terminal stream goes. Each call must invoke `done`
 * once the bytes have left this process (or the client is gone): that is how the fan-out knows
 * how much is queued for the client.
 */
export type FanoutSink = {
  snapshot(snapshot: Snapshot, kind: 'snapshot' | 'resync' | 'reply', done: () => void): void;
  output(data: Buffer, done: () => void): void;
  event(event: StreamEvent, done: () => void): void;
};

export type FanoutMember = { readonly sink: FanoutSink };

export type FanoutOptions = {
  /** Bytes a client may have queued before it is cut off and later resynced from a snapshot. */
  queueBytes: number;
  /** A snapshot reflecting at least the items sent so far (`seq` says exactly which). */
  requestSnapshot: () => Promise<Snapshot>;
  /** True when every member is congested: the source should pause so memory stays bounded. */
  onCongestionChange: (allCongested: boolean) => void;
  onRequestError?: (error: Error) => void;
};

type Item = { seq: number; data?: Buffer; event?: StreamEvent; bytes: number };

type Member = FanoutMember & {
  /** waiting: needs a snapshot and holds items from `since`; overflowed: cut off until drained */
  state: 'waiting' | 'live' | 'overflowed';
  since: number;
  held: Item[];
  heldBytes: number;
  inflight: number;
  snapshotInflight: number;
  synced: boolean;
  removed: boolean;
};

/** Rough size of a small JSON event on the wire; only used for queue accounting. */
const EVENT_BYTES = 64;

/**
 * Fans one terminal's output stream out to many clients, each with its own bounded queue.
 *
 * The stream is a sequence of items (output chunks and in-order events such as resizes), each
 * numbered by `seq`. A client first receives a snapshot of the screen that reflects items
 * `< snapshot.seq`, then the items from there on. A client whose queue overflows stops receiving
 * items; once its queue has drained it is resynced from a fresh snapshot, so a slow client never
 * holds the others back and never sees a torn stream. When every client is congested the source
 * is told to pause.
 */
export function createFanout(options: FanoutOptions) {
  const members = new Set<Member>();
  let seq = 0;
  /** `seq` when the newest outstanding snapshot request was issued. */
  let requestedAt: number | undefined;
  let requestToken = 0;
  let allCongested = false;

  function isCongested(m: Member): boolean {
    return m.state === 'overflowed' || (m.state === 'live' && m.inflight >= options.queueBytes / 2);
  }

  function updateCongestion(): void {
    let all = members.size > 0;
    for (const m of members) {
      if (!isCongested(m)) {
        all = false;
        break;
      }
    }
    if (all !== allCongested) {
      allCongested = all;
      options.onCongestionChange(all);
    }
  }

  function settle(m: Member, bytes: number, isSnapshot: boolean): void {
    if (isSnapshot) m.snapshotInflight -= bytes;
    else m.inflight -= bytes;
    if (m.removed) return;
    if (m.state === 'overflowed' && m.inflight === 0 && m.snapshotInflight === 0) startWaiting(m);
    updateCongestion();
  }

  function send(m: Member, item: Item): void {
    // A snapshot's own size does not count: a large screen must not cause an endless resync loop.
    if (m.inflight > 0 && m.inflight + item.bytes > options.queueBytes) {
      m.state = 'overflowed';
      return;
    }
    m.inflight += item.bytes;
    const done = () => settle(m, item.bytes, false);
    if (item.data) m.sink.output(item.data, done);
    else m.sink.event(item.event as StreamEvent, done);
  }

  function sendSnapshot(m: Member, snapshot: Snapshot, kind: 'snapshot' | 'resync' | 'reply'): void {
    const bytes = snapshot.data.length + EVENT_BYTES;
    m.snapshotInflight += bytes;
    m.sink.snapshot(snapshot, kind, () => settle(m, bytes, true));
  }

  function startWaiting(m: Member): void {
    m.state = 'waiting';
    m.since = seq;
    m.held = [];
    m.heldBytes = 0;
    ensureRequest(m.since);
  }

  function ensureRequest(since: number): void {
    if (requestedAt !== undefined && requestedAt >= since) return;
    const token = ++requestToken;
    requestedAt = seq;
    options.requestSnapshot().then(
      (snapshot) => {
        if (token === requestToken) requestedAt = undefined;
        deliver(snapshot);
      },
      (err: Error) => {
        if (token !== requestToken) return;
        requestedAt = undefined;
        options.onRequestError?.(err);
      },
    );
  }

  function satisfy(m: Member, snapshot: Snapshot): void {
    const held = m.held.filter((item) => item.seq >= snapshot.seq);
    m.held = [];
    m.heldBytes = 0;
    m.state = 'live';
    sendSnapshot(m, snapshot, m.synced ? 'resync' : 'snapshot');
    m.synced = true;
    for (const item of held) {
      if (m.state !== 'live') break;
      send(m, item);
    }
  }

  function deliver(snapshot: Snapshot): void {
    let stillWaiting: number | undefined;
    for (const m of members) {
      if (m.state !== 'waiting') continue;
      if (m.since <= snapshot.seq) satisfy(m, snapshot);
      else stillWaiting = Math.min(stillWaiting ?? m.since, m.since);
    }
    if (stillWaiting !== undefined) ensureRequest(stillWaiting);
    updateCongestion();
  }

  function broadcast(item: Item): void {
    for (const m of members) {
      if (m.state === 'live') send(m, item);
      else if (m.state === 'waiting') {
        m.held.push(item);
        m.heldBytes += item.bytes;
        if (m.heldBytes > options.queueBytes) {
          // Too much arrived while the snapshot was on its way: wait for a later one instead.
          m.held = [];
          m.heldBytes = 0;
          m.since = seq;
          ensureRequest(m.since);
        }
      }
    }
    updateCongestion();
  }

  return {
    /** Number of items so far: a snapshot taken now reflects exactly these. */
    get seq() {
      return seq;
    },
    get size() {
      return members.size;
    },
    get congested() {
      return allCongested;
    },

    add(sink: FanoutSink): FanoutMember {
      const m: Member = { sink, state: 'waiting', since: seq, held: [], heldBytes: 0, inflight: 0, snapshotInflight: 0, synced: false, removed: false };
      members.add(m);
      ensureRequest(m.since);
      updateCongestion();
      return m;
    },

    remove(member: FanoutMember): void {
      const m = member as Member;
      if (m.removed) return;
      m.removed = true;
      m.held = [];
      members.delete(m);
      updateCongestion();
    },

    output(data: Buffer): void {
      broadcast({ seq: seq++, data, bytes: data.length });
    },

    event(event: StreamEvent): void {
      broadcast({ seq: seq++, event, bytes: EVENT_BYTES });
    },

    /**
     * The source lost continuity (its own upstream resynced): `snapshot` starts a new numbering
     * and every member moves to it. Outstanding requests are void.
     */
    reset(snapshot: Snapshot): void {
      seq = snapshot.seq;
      requestToken++;
      requestedAt = undefined;
      for (const m of members) {
        if (m.state === 'waiting') {
          // Held items are numbered in the old sequence: the snapshot covers them.
          m.held = [];
          m.heldBytes = 0;
          satisfy(m, snapshot);
        }
        else if (m.state === 'live') {
          sendSnapshot(m, snapshot, 'resync');
        }
      }
      updateCongestion();
    },

    /** Sends a requested snapshot to one member, in order with its stream (if it is live). */
    reply(member: FanoutMember, snapshot: Snapshot): void {
      const m = member as Member;
      if (!m.removed && m.state === 'live') sendSnapshot(m, snapshot, 'reply');
    },

    /** Whether a member currently receives the live stream (for tests and diagnostics). */
    stateOf(member: FanoutMember): 'waiting' | 'live' | 'overflowed' {
      return (member as Member).state;
    },
  };
}

export type Fanout = ReturnType<typeof createFanout>;
