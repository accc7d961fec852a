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
import type { DeployEvent, DeployRun } from '../common/index.ts';

export const DEPLOY_SUBSYSTEM = 'wharf-deploy';

export type DeployAgentRequest =
  | { op: 'read'; paths: string[]; maxBytes: number }
  | BoardRequest
  | { op: 'pack'; context: string; patterns: string[]; prefix: string }
  | { op: 'run'; command: string; cwd: string; env: Record<string, string> };

/** The answer to `read`: each path's text, or null for a file that does not exist. */
export type DeployReadReply = { ok: true; files: Record<string, string | null> } | { ok: false; error: string };

/** The last frame (`x`) of a `run`: the exit code (128+n for signal n), and why it could not start. */
export type DeployRunExit = { code: number; error?: string };

/**
 * The run board: a workspace's live deploy run, its log and its control, kept by the agent so
 * that every control-server replica can follow and cancel it, whichever one runs it
 * (docs/replicas.md). Ops on the same subsystem:
 *
 *   {op: "host", run, events, retentionMs, maxOutputBytes}
 *       the replica that runs it. Answer: one BoardReply frame ({ok: true}, or {ok: false,
 *       conflict: <id of the run in progress>}). Then the channel stays open: the replica sends
 *       HostMessage frames (events, run updates), the agent sends {t: "cancel"} when someone asks.
 *       `events` (a re-host after the agent restarted) are the log so far. The channel closing
 *       before a `done` event ends the run as `error` ("interrupted"): the replica is gone.
 *   {op: "watch", id}   → BoardReply {ok, run} (or {ok: false, notFound}), then one {t: "event"}
 *                         frame per event (replay first), the channel ends after `done`
 *   {op: "get", id}     → BoardReply {ok, run with events} or {ok: false, notFound}
 *   {op: "list"}        → BoardReply {ok, runs} (without events)
 *   {op: "cancel", id}  → BoardReply {ok, run} once the request is passed to the running replica
 */
export type BoardRequest =
  | { op: 'host'; run: DeployRun; events: DeployEvent[]; retentionMs: number; maxOutputBytes: number }
  | { op: 'watch'; id: string }
  | { op: 'get'; id: string }
  | { op: 'list' }
  | { op: 'cancel'; id: string };

export type BoardReply =
  | { ok: true; run?: DeployRun; runs?: DeployRun[] }
  | { ok: false; error: string; conflict?: string; notFound?: boolean };

/** Frames on a host channel after its answer, and on a watch channel after its answer. */
export type HostMessage = { t: 'event'; event: DeployEvent } | { t: 'run'; run: DeployRun } | { t: 'cancel' };
