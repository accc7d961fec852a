import type { Duplex } from 'node:stream';
import { mapAgentFailure, WharfError } from '../../common/index.ts';
import { createFanout, type FanoutMember, type FanoutSink } from '../fanout.ts';
import { createTypedFrameDecoder, encodeDataFrame, encodeJsonFrame } from '../frames.ts';
import type { AttachPrincipal, ServerAttachMessage, Snapshot, StreamEvent, TerminalRole } from '../protocol.ts';

/** One websocket client of a terminal, as the hub sees it. */
export type HubClient = {
  role: TerminalRole;
  /** Who the client is, for the agent's limits on attached clients (see ../agent/client-limits.ts). */
  principal: AttachPrincipal;
  /** Initial size for an editor; viewers never affect the pty size. */
  size?: { cols: number; rows: number };
  sink: FanoutSink;
  /** The hub ends the client: normally (`error` absent) or because something failed. */
  close(error: WharfError | undefined, reason: string): void;
};

export type HubAttachment = {
  /** Sends input to the pty; false when the agent link is congested (wait for `inputDrained`). */
  input(data: Buffer): boolean;
  inputDrained(): Promise<void>;
  resize(cols: number, rows: number): void;
  detach(): void;
};

export type TerminalHubsOptions = {
  openChannel: (workspace: string) => Promise<Duplex>;
  queueBytes: number;
  maxFrameBytes: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

/** Input larger than this is split so one paste cannot make one huge subsystem frame. */
const MAX_INPUT_FRAME = 64 * 1024;
/** Keystrokes a client types before the agent has admitted it are kept, up to this much. */
const MAX_EARLY_INPUT = 64 * 1024;

class Superseded extends Error {}

/**
 * One hub per terminal per control server: a single attach channel to the agent, fanned out to
 * every websocket client here, each with its own bounded queue. This keeps the agent's work per
 * output byte constant however many tabs watch, and a slow tab only ever costs itself a resync.
 */
export function createTerminalHubs(options: TerminalHubsOptions) {
  const hubs = new Map<string, ReturnType<typeof createHub>>();

  function createHub(workspace: string, terminal: string, key: string) {
    /**
     * A client is served (has a fan-out member) only once the agent admitted its `join`; until
     * then its keystrokes wait in `early`.
     */
    type ClientState = {
      cid: number;
      client: HubClient;
      member?: FanoutMember;
      size?: { cols: number; rows: number };
      joined: boolean;
      early: Buffer[];
      earlyBytes: number;
    };
    const clients = new Map<number, ClientState>();
    let nextCid = 1;
    let channel: Duplex | undefined;
    let ready = false;
    let closed = false;
    let notReady: Array<(err: Error) => void> = [];
    let nextRid = 1;
    const pending = new Map<number, { resolve: (s: Snapshot) => void; reject: (err: Error) => void }>();
    let sentSize = '';
    let sentClients = -1;

    function writeInput(data: Buffer): boolean {
      let flowing = true;
      for (let i = 0; i < data.length; i += MAX_INPUT_FRAME) {
        flowing = (channel as Duplex).write(encodeDataFrame(data.subarray(i, i + MAX_INPUT_FRAME)));
      }
      return flowing;
    }

    const fanout = createFanout({
      queueBytes: options.queueBytes,
      requestSnapshot: () => {
        // Before the first snapshot arrives every waiting client is served by it.
        if (!ready) return new Promise<Snapshot>((_, reject) => notReady.push(reject));
        const rid = nextRid++;
        return new Promise<Snapshot>((resolve, reject) => {
          pending.set(rid, { resolve, reject });
          send({ type: 'snapshot', rid });
        });
      },
      onCongestionChange: (all) => {
        if (all) channel?.pause();
        else channel?.resume();
      },
      onRequestError: (err) => {
        if (!(err instanceof Superseded)) options.log('terminal.snapshot_request_failed', { workspace, terminal, error: err.message });
      },
    });

    function send(message: ServerAttachMessage | Record<string, unknown>): void {
      if (channel && !closed) channel.write(encodeJsonFrame(message));
    }

    function supersedePending(): void {
      for (const p of pending.values()) p.reject(new Superseded('superseded'));
      pending.clear();
      for (const reject of notReady) reject(new Superseded('superseded'));
      notReady = [];
    }

    function shutdown(error: WharfError | undefined, reason: string): void {
      if (closed) return;
      closed = true;
      if (hubs.get(key) === hub) hubs.delete(key);
      supersedePending();
      for (const c of [...clients.values()]) {
        if (c.member) fanout.remove(c.member);
        c.client.close(error, reason);
      }
      clients.clear();
      channel?.end();
      channel?.destroy();
    }

    function join(c: ClientState): void {
      if (!channel || closed || c.joined) return;
      c.joined = true;
      send({ type: 'join', cid: c.cid, principal: c.client.principal });
    }

    function admit(cid: number): void {
      const c = clients.get(cid);
      // Gone already: its `leave` is on the way to the agent.
      if (!c || c.member) return;
      c.member = fanout.add(c.client.sink);
      for (const data of c.early) writeInput(data);
      c.early = [];
      syncAgentView();
    }

    function refuse(cid: number, error: WharfError): void {
      const c = clients.get(cid);
      if (!c) return;
      clients.delete(cid);
      c.client.close(error, error.message);
      if (clients.size === 0) shutdown(undefined, 'no clients left');
    }

    function countAdmitted(): number {
      let n = 0;
      for (const c of clients.values()) if (c.member) n++;
      return n;
    }

    function syncAgentView(): void {
      if (!ready) return;
      let cols = Infinity;
      let rows = Infinity;
      for (const c of clients.values()) {
        if (!c.member || c.client.role !== 'editor' || !c.size) continue;
        cols = Math.min(cols, c.size.cols);
        rows = Math.min(rows, c.size.rows);
      }
      const size = cols === Infinity ? { cols: null, rows: null } : { cols, rows };
      const sizeKey = `${size.cols}x${size.rows}`;
      if (sizeKey !== sentSize) {
        sentSize = sizeKey;
        send({ type: 'size', ...size });
      }
      const admitted = countAdmitted();
      if (admitted !== sentClients) {
        sentClients = admitted;
        send({ type: 'clients', count: admitted });
      }
    }

    function onJson(message: Record<string, unknown>): void {
      switch (message.type) {
        case 'snapshot': {
          const snapshot = message as unknown as Snapshot & { kind: string; rid?: number };
          if (snapshot.kind === 'reply') {
            const waiter = pending.get(Number(snapshot.rid));
            pending.delete(Number(snapshot.rid));
            waiter?.resolve(snapshot);
            return;
          }
          const first = !ready;
          ready = true;
          supersedePending();
          fanout.reset(snapshot);
          if (first) syncAgentView();
          return;
        }
        case 'resize':
        case 'exit':
          return fanout.event(message as unknown as StreamEvent);
        case 'closed':
          return shutdown(undefined, String(message.reason ?? 'the terminal was closed'));
        case 'admit':
          return admit(Number(message.cid));
        case 'refuse':
          return refuse(Number(message.cid), mapAgentFailure({ code: message.code, message: message.message ?? 'too many clients' }, { fallback: 'too_many' }));
        case 'error': {
          if (!ready) {
            const error = mapAgentFailure(message);
            return shutdown(error, error.message);
          }
          options.log('terminal.agent_error', { workspace, terminal, error: message.message });
          return;
        }
        default:
          // An attach refusal comes back as a one-off reply: `{ok: false, error}`.
          if (message.ok === false) {
            const refusal = message.error as { code?: unknown; message?: unknown } | undefined;
            const error = mapAgentFailure({ code: refusal?.code, message: refusal?.message ?? 'the agent refused to attach' });
            return shutdown(error, error.message);
          }
      }
    }

    async function open(initialSize: { cols: number; rows: number } | undefined): Promise<void> {
      let opened: Duplex;
      try {
        opened = await options.openChannel(workspace);
      } catch (err) {
        const error = err instanceof WharfError ? err : new WharfError('unavailable', `cannot reach the workspace agent: ${(err as Error).message}`);
        return shutdown(error, error.message);
      }
      if (closed) {
        opened.destroy();
        return;
      }
      channel = opened;
      const decoder = createTypedFrameDecoder(options.maxFrameBytes, {
        onData: (data) => fanout.output(data),
        onJson,
        onError: (message) => {
          options.log('terminal.bad_frame', { workspace, terminal, error: message });
          shutdown(new WharfError('internal', `bad data from the workspace agent: ${message}`), 'bad data from the workspace agent');
        },
      });
      channel.on('data', (chunk: Buffer) => decoder.push(chunk));
      channel.on('error', () => {});
      channel.on('close', () => shutdown(new WharfError('unavailable', 'lost the connection to the workspace agent; reconnect'), 'lost the connection to the workspace agent'));
      channel.write(encodeJsonFrame({ op: 'attach', id: terminal, ...(initialSize ?? {}) }));
      for (const c of clients.values()) join(c);
      if (fanout.congested) channel.pause();
    }

    const hub = {
      get closed() {
        return closed;
      },
      attach(client: HubClient): HubAttachment {
        const state: ClientState = { cid: nextCid++, client, size: client.role === 'editor' ? client.size : undefined, joined: false, early: [], earlyBytes: 0 };
        clients.set(state.cid, state);
        join(state);
        let detached = false;
        return {
          input(data) {
            if (closed || client.role !== 'editor') return true;
            // The agent applies input from the moment it has admitted the client, before its first snapshot.
            if (!state.member) {
              if (state.earlyBytes + data.length <= MAX_EARLY_INPUT) {
                state.early.push(Buffer.from(data));
                state.earlyBytes += data.length;
              }
              return true;
            }
            return writeInput(data);
          },
          inputDrained() {
            return new Promise((resolve) => {
              if (!channel || closed || !channel.writableNeedDrain) return resolve();
              channel.once('drain', () => resolve());
              channel.once('close', () => resolve());
            });
          },
          resize(cols, rows) {
            if (client.role !== 'editor') return;
            state.size = { cols, rows };
            syncAgentView();
          },
          detach() {
            if (detached) return;
            detached = true;
            if (clients.get(state.cid) !== state) return;
            clients.delete(state.cid);
            if (state.member) fanout.remove(state.member);
            if (clients.size === 0) return shutdown(undefined, 'no clients left');
            if (state.joined) send({ type: 'leave', cid: state.cid });
            syncAgentView();
          },
        };
      },
      open,
      shutdown,
    };
    return hub;
  }

  return {
    /** Attaches a client to the terminal, opening the hub's agent channel on first use. */
    attach(workspace: string, terminal: string, client: HubClient): HubAttachment {
      const key = `${workspace}\u0000${terminal}`;
      let hub = hubs.get(key);
      let fresh = false;
      if (!hub || hub.closed) {
        hub = createHub(workspace, terminal, key);
        hubs.set(key, hub);
        fresh = true;
      }
      const attachment = hub.attach(client);
      if (fresh) void hub.open(client.role === 'editor' ? client.size : undefined);
      return attachment;
    },

    /** Ends every hub (server shutdown). */
    closeAll(reason: string): void {
      for (const hub of [...hubs.values()]) hub.shutdown(new WharfError('unavailable', reason), reason);
    },

    get size() {
      return hubs.size;
    },
  };
}

export type TerminalHubs = ReturnType<typeof createTerminalHubs>;
