import type { ClientChannel } from 'ssh2';
import { createLineSplitter, WharfError } from '../../common/index.ts';
import type { AgentConnection } from '../../workspace/index.ts';
import { PORTS_SUBSYSTEM, type ListeningPort, type PortsMessage } from '../protocol.ts';

export type PortWatchOptions = {
  agent: (workspace: string) => Promise<AgentConnection>;
  /** After a lost subscription, how long before it is opened again (while someone still wants it). */
  retryMs: number;
  /** How long a subscription nobody listens to is kept for the proxy's lookups. */
  idleMs: number;
  /** How long a lookup waits for the agent's first list. */
  firstListTimeoutMs: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

export type PortListener = (ports: ListeningPort[]) => void;

type Entry = {
  listeners: Set<PortListener>;
  ports?: ListeningPort[];
  channel?: ClientChannel;
  waiting: Array<{ resolve: (ports: ListeningPort[]) => void; reject: (err: Error) => void }>;
  idleTimer?: NodeJS.Timeout;
  retryTimer?: NodeJS.Timeout;
  lastError?: Error;
};

export type PortWatch = ReturnType<typeof createPortWatch>;

/**
 * One `wharf-ports` subscription per workspace on this replica, fanned out to every browser that
 * watches it and read by the proxy; opened on first use, closed when nobody has needed it for
 * `idleMs`, re-opened after a drop while it is wanted.
 */
export function createPortWatch(options: PortWatchOptions) {
  const entries = new Map<string, Entry>();

  function isWanted(entry: Entry): boolean {
    return entry.listeners.size > 0 || entry.waiting.length > 0 || entry.idleTimer !== undefined;
  }

  function publish(workspace: string, entry: Entry, ports: ListeningPort[]): void {
    entry.ports = ports;
    for (const w of entry.waiting.splice(0)) w.resolve(ports);
    for (const listener of entry.listeners) listener(ports);
  }

  function open(workspace: string, entry: Entry): void {
    if (entry.channel || entry.retryTimer) return;
    options
      .agent(workspace)
      .then((agent) => agent.subsystem(PORTS_SUBSYSTEM))
      .then(
        (channel) => {
          if (entries.get(workspace) !== entry || !isWanted(entry)) {
            channel.close();
            return;
          }
          entry.channel = channel;
          // The splitter hands over whole lines, several at a time when they came together.
          const lines = createLineSplitter((text) => {
            for (const line of text.split('\n')) {
              if (!line.trim()) continue;
              try {
                const message = JSON.parse(line) as PortsMessage;
                if (message.type === 'ports' && Array.isArray(message.ports)) publish(workspace, entry, message.ports);
              } catch {
                options.log('ports.bad_line', { workspace });
              }
            }
          });
          channel.on('data', (chunk: Buffer) => lines.push(chunk));
          channel.on('error', (err: Error) => {
            entry.lastError = err;
            channel.destroy();
          });
          channel.once('close', () => {
            entry.channel = undefined;
            lost(workspace, entry, entry.lastError ?? new WharfError('unavailable', 'the workspace agent closed its port list'));
          });
        },
        (err: Error) => lost(workspace, entry, err),
      );
  }

  /** The subscription is gone: lookups fail now, and it comes back after `retryMs` if still wanted. */
  function lost(workspace: string, entry: Entry, err: Error): void {
    entry.ports = undefined;
    for (const w of entry.waiting.splice(0)) w.reject(err);
    if (entries.get(workspace) !== entry) return;
    if (!isWanted(entry)) {
      entries.delete(workspace);
      return;
    }
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      if (isWanted(entry)) open(workspace, entry);
      else entries.delete(workspace);
    }, options.retryMs);
    entry.retryTimer.unref();
  }

  function entryOf(workspace: string): Entry {
    let entry = entries.get(workspace);
    if (!entry) entries.set(workspace, (entry = { listeners: new Set(), waiting: [] }));
    return entry;
  }

  /** Keeps the subscription for `idleMs` more after its last use. */
  function touch(workspace: string, entry: Entry): void {
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined;
      if (!isWanted(entry)) close(workspace, entry);
    }, options.idleMs);
    entry.idleTimer.unref();
  }

  function close(workspace: string, entry: Entry): void {
    entries.delete(workspace);
    clearTimeout(entry.retryTimer);
    clearTimeout(entry.idleTimer);
    entry.channel?.close();
  }

  return {
    /** Calls `listener` with the list now (when known) and on every change, until the returned function is called. */
    watch(workspace: string, listener: PortListener): () => void {
      const entry = entryOf(workspace);
      entry.listeners.add(listener);
      if (entry.ports) listener(entry.ports);
      open(workspace, entry);
      return () => {
        entry.listeners.delete(listener);
        if (entry.listeners.size === 0) touch(workspace, entry);
      };
    },

    /** The workspace's listening ports as last reported (waiting for the first list when new). */
    current(workspace: string): Promise<ListeningPort[]> {
      const entry = entryOf(workspace);
      touch(workspace, entry);
      if (entry.ports) return Promise.resolve(entry.ports);
      return new Promise((resolve, reject) => {
        const waiter = { resolve, reject };
        entry.waiting.push(waiter);
        const timer = setTimeout(() => {
          entry.waiting = entry.waiting.filter((w) => w !== waiter);
          reject(new WharfError('unavailable', `the workspace agent did not list its ports within ${options.firstListTimeoutMs / 1000} s`));
        }, options.firstListTimeoutMs);
        waiter.resolve = (ports) => {
          clearTimeout(timer);
          resolve(ports);
        };
        waiter.reject = (err) => {
          clearTimeout(timer);
          reject(err);
        };
        open(workspace, entry);
      });
    },

    shutdown(): void {
      for (const [workspace, entry] of [...entries]) close(workspace, entry);
    },
  };
}
