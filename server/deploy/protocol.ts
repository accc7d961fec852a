/**
 * The conversation between deploy's two halves. The control server never touches a workspace's
 * disk, so it asks the workspace agent, over the `wharf-deploy` SSH subsystem, to read the
 * manifest, to pack the context, and (local runs) to run a command. One JSON request frame per
 * channel (frames of server/common's frame.ts):
 *
 *   {op: "read", paths: [...], maxBytes}   → one JSON frame DeployReadReply
 *   {op: "pack", context, patterns, prefix} → frames: "d"+tar bytes..., then "s"+PackSummary JSON
 *                                            or "e"+{message} JSON
 *   {op: "run", command, cwd, env}          → frames: "o"+stdout, "e"+stderr..., then "x"+DeployRunExit
 *
 * A refused or unreadable request of any op is answered by one JSON frame {ok: false, error}.
 * Everything comes back on the channel's main stream, never stderr: ssh2 1.17 can lose an
 * extended-data write that waits for window space after a main-stream write did.
 */
export const DEPLOY_SUBSYSTEM = 'wharf-deploy';

export type DeployAgentRequest =
  | { op: 'read'; paths: string[]; maxBytes: number }
  | { op: 'pack'; context: string; patterns: string[]; prefix: string }
  | { op: 'run'; command: string; cwd: string; env: Record<string, string> };

/** The answer to `read`: each path's text, or null for a file that does not exist. */
export type DeployReadReply = { ok: true; files: Record<string, string | null> } | { ok: false; error: string };

/** The last frame (`x`) of a `run`: the exit code (128+n for signal n), and why it could not start. */
export type DeployRunExit = { code: number; error?: string };
