/**
 * The deploy API's shapes (documented in docs/deploy.md): the server sends them, the CLI prints
 * them, the web UI shows them; here so that each of them can take them without loading the others.
 */

/** Which section of the manifest runs. */
export type DeployKind = 'deploy' | 'destroy';

/** Remote: the commands run in a runner on the builder; local (deprecated): inside the workspace. */
export type DeployMode = 'remote' | 'local';

export type CommandInfo = { index: number; name: string; command: string };

export type FailedCommand = { index: number; name: string; exitCode: number };

export type DeployStatus = 'running' | 'succeeded' | 'failed' | 'error' | 'cancelled';

export type DeployPhase = 'reading-manifest' | 'packing' | 'building' | 'running' | 'local';

type Timed = { at: number };

export type DeployEvent = Timed &
  (
    | { type: 'plan'; id: string; kind: DeployKind; mode: DeployMode; image?: string; commands: CommandInfo[] }
    | { type: 'phase'; phase: DeployPhase; message: string }
    | { type: 'context'; bytes: number; files: number; hint?: string }
    | { type: 'warning'; message: string }
    | { type: 'log'; text: string }
    | { type: 'command-start'; index: number; name: string; command: string }
    | { type: 'output'; index: number; stream: 'stdout' | 'stderr'; text: string }
    | { type: 'command-end'; index: number; exitCode: number; durationMs: number }
    | { type: 'done'; status: Exclude<DeployStatus, 'running'>; failedCommand?: FailedCommand; message?: string; durationMs: number }
  );

/** An event before the run log stamps its time. */
export type DeployEventInput = DeployEvent extends infer E ? (E extends Timed ? Omit<E, 'at'> : never) : never;

export type DeployRun = {
  id: string;
  workspace: string;
  kind: DeployKind;
  mode: DeployMode | null;
  status: DeployStatus;
  startedAt: string;
  durationMs: number | null;
  failedCommand?: FailedCommand;
  message?: string;
  commands: CommandInfo[];
  events?: DeployEvent[];
  logTruncated?: boolean;
  /** Which server process runs it, to tell an interrupted run from one running elsewhere. */
  server?: string;
};

export type DeployRequest = {
  kind: DeployKind;
  remote: boolean | undefined;
  variables: Record<string, string>;
  /** Manifest path relative to the workspace (or upload) root; undefined = okteto.yml, then okteto.yaml. */
  file: string | undefined;
};
