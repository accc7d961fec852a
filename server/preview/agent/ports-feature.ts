import type { Duplex } from 'node:stream';
import type { AgentFeature } from '../../agent/index.ts';
import { PORTS_SUBSYSTEM, type ListeningPort, type PortsMessage } from '../protocol.ts';
import { scanListeningPorts, type PortScanOptions } from './listening-ports.ts';

export type PortsFeatureOptions = PortScanOptions & {
  /** How often /proc is read while someone is subscribed (the kernel has no listen event to wait on). */
  intervalMs: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

export type PortsFeature = AgentFeature & {
  /**
   * Why the control server may not dial `host:port` inside the workspace, or undefined when it
   * may: only loopback, and only a port a workspace process listens on (checked afresh when the
   * last scan does not list it, so a port opened a moment ago is reachable at once).
   */
  refuseServerTarget(host: string, port: number): Promise<string | undefined>;
};

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function samePorts(a: ListeningPort[], b: ListeningPort[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The `wharf-ports` subsystem: each subscriber gets the current list of listening ports as a
 * JSON line at once and again whenever it changes. /proc is scanned once per interval for all
 * subscribers together (the control server subscribes once per workspace, and fans out).
 */
export function createPortsFeature(options: PortsFeatureOptions): PortsFeature {
  const subscribers = new Set<Duplex>();
  let current: ListeningPort[] = [];
  let scannedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let scanning: Promise<ListeningPort[]> | undefined;

  function scan(): Promise<ListeningPort[]> {
    scanning ??= scanListeningPorts(options)
      .then((ports) => {
        scannedAt = Date.now();
        if (!samePorts(ports, current)) {
          current = ports;
          const line = `${JSON.stringify({ type: 'ports', ports } satisfies PortsMessage)}\n`;
          for (const stream of subscribers) stream.write(line);
        }
        return current;
      })
      .catch((err: Error) => {
        options.log('ports.scan_failed', { error: err.message });
        return current;
      })
      .finally(() => (scanning = undefined));
    return scanning;
  }

  function schedule(): void {
    if (timer || subscribers.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      void scan().then(schedule);
    }, options.intervalMs);
  }

  return {
    subsystems: {
      [PORTS_SUBSYSTEM]: (stream) => {
        stream.on('error', () => stream.destroy());
        // Nothing is read from a subscriber; reading keeps its window open.
        stream.on('data', () => {});
        stream.once('close', () => subscribers.delete(stream));
        void scan().then((ports) => {
          if (stream.destroyed) return;
          subscribers.add(stream);
          stream.write(`${JSON.stringify({ type: 'ports', ports } satisfies PortsMessage)}\n`);
          schedule();
        });
      },
    },
    async refuseServerTarget(host, port) {
      if (!LOOPBACK.has(host)) return `the server may only reach loopback ports of the workspace, not ${host}`;
      const listed = (ports: ListeningPort[]) => ports.some((p) => p.port === port);
      if (listed(current) && Date.now() - scannedAt < 5 * options.intervalMs) return undefined;
      return listed(await scan()) ? undefined : `nothing in the workspace listens on port ${port}`;
    },
    async shutdown() {
      clearTimeout(timer);
      for (const stream of subscribers) stream.end();
    },
  };
}
