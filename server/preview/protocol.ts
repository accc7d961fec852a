// What the agent's and the control server's halves of previews say to each other.

/** The agent subsystem that streams the workspace's listening TCP ports, one JSON line per change. */
export const PORTS_SUBSYSTEM = 'wharf-ports';

/** A TCP port a workspace process listens on. */
export type ListeningPort = {
  port: number;
  /** Every local address it listens on (`127.0.0.1`, `0.0.0.0`, `::`, `::1`, ...). */
  addresses: string[];
  /** The listening process's name (`/proc/<pid>/comm`) and id, when the agent could see it. */
  process?: string;
  pid?: number;
};

/** One line of the `wharf-ports` stream: the whole current list, sent first and on every change. */
export type PortsMessage = { type: 'ports'; ports: ListeningPort[] };

/** The lowest and highest port a preview may name. */
export const PORT_RANGE = { min: 1, max: 65535 } as const;
