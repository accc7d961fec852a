/**
 * Types and constants shared by the server, the CLI and the web UI. The web imports values from
 * this file alone (eslint.config.js), so it stays pure: constants and types, no imports.
 */

export type WorkspaceStatus = 'running' | 'stopped' | 'starting' | 'error';

export type Workspace = {
  id: string;
  name: string;
  driver: string;
  status: WorkspaceStatus;
  createdAt: string;
  /** OpenSSH-format public host key of the workspace agent, for known_hosts pinning. */
  hostKey: string;
  /** Why `status` is `error`, for the user. */
  statusReason?: string;
  /** Container drivers: the workspace's image and limits (memory and disk in bytes). */
  image?: string;
  resources?: { cpus?: number; memory?: number; pids?: number; disk?: number };
};

/** A driver a workspace can be created on (`GET /api/drivers`), with what a create request may set on it. */
export type DriverOffer = {
  kind: string;
  default: boolean;
  /** Drivers with images: the one used when a request names none. */
  image?: string;
  /** Drivers with limits: the defaults a request may override (memory and disk in bytes). */
  resources?: { cpus?: number; memory?: number; pids?: number; disk?: number };
};

export type DirectoryEntry = {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtime: string;
};

/** Close codes wharf uses on its websockets (4000-4999 is the application range). */
export const CLOSE_CODES = {
  normal: 1000,
  goingAway: 1001,
  /** RFC 6455: message too big */
  tooBig: 1009,
  internal: 1011,
  badRequest: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  notFound: 4404,
  conflict: 4409,
  preconditionFailed: 4412,
  payloadTooLarge: 4413,
  /** HTTP 429's counterpart: a limit on concurrent clients was reached. */
  tooMany: 4429,
  unavailable: 4503,
} as const;

/** How a terminal's process ended. */
export type ExitStatus = { code: number | null; signal: string | null };

/** A terminal as `GET /api/workspaces/:id/terminals` lists it. */
export type TerminalInfo = {
  id: string;
  /** The command line the terminal runs, for display. */
  command: string;
  /** Working directory relative to the workspace root (`.` for the root). */
  cwd: string;
  cols: number;
  rows: number;
  createdAt: string;
  /** Websocket clients attached through every control-server replica. */
  clients: number;
  exited?: ExitStatus;
};

export type TerminalRole = 'editor' | 'viewer';

/** Terminal websocket messages from server to client (text frames; output bytes are binary frames). */
export type TerminalServerMessage =
  | { type: 'snapshot'; data: string; cols: number; rows: number; role: TerminalRole }
  | { type: 'resync'; data: string; cols: number; rows: number }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'exit'; code: number | null; signal: string | null }
  | { type: 'error'; message: string };

/**
 * Terminal websocket text messages from client to server (input bytes are binary frames). `ack`
 * only with `flow=ack` on the attach URL: the output bytes rendered so far.
 */
export type TerminalClientMessage = { type: 'resize'; cols: number; rows: number } | { type: 'ack'; bytes: number };

/**
 * The web terminal's colours, which the agent's headless screen also reports to programs that
 * ask (OSC 10/11/12), so both must be the same.
 */
export const TERMINAL_COLORS = { foreground: '#d4d4d4', background: '#1e1e1e', cursor: '#d4d4d4' } as const;

/** y-websocket's message types: the first varUint of every binary message of a document's websocket. */
export const DOC_MESSAGE = { sync: 0, awareness: 1, queryAwareness: 3 } as const;

/** The name of a document's Y.Text, which holds the file's text. */
export const DOC_TEXT_NAME = 'content';

/** JSON messages the browser receives as text frames on a document's websocket. */
export type DocStateMessage = { type: 'state'; readOnly: boolean; reason?: 'binary' | 'too_large'; size: number };
export type DocServerMessage =
  | DocStateMessage
  | { type: 'saved'; at: number }
  | { type: 'deleted' }
  | { type: 'error'; message: string };
