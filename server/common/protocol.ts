/** Types shared by the server, the CLI and the web UI (which imports only types from here). */

export type WorkspaceStatus = 'running' | 'stopped' | 'starting' | 'error';

export type Workspace = {
  id: string;
  name: string;
  driver: string;
  status: WorkspaceStatus;
  createdAt: string;
  /** OpenSSH-format public host key of the workspace agent, for known_hosts pinning. */
  hostKey: string;
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
