import type { DeployEvent, DeployEventInput, DeployRun } from '../common/index.ts';

/**
 * The events of one run: delivered live to every subscriber, and kept for replay and history
 * within a bound. Output beyond the bound is still delivered live, but not kept (the log says
 * so with one warning event and `logTruncated`).
 */
export type RunLog = {
  readonly events: readonly DeployEvent[];
  readonly truncated: boolean;
  readonly done: boolean;
  emit(event: DeployEventInput): DeployEvent;
  /** An event already timed (`at`) by another copy of this log: the agent's copy of a run's log. */
  append(event: DeployEvent): DeployEvent;
  subscribe(listener: (event: DeployEvent) => void): () => void;
  /** The kept events with output trimmed to `maxBytes` of text (for the workspace metadata). */
  snapshot(maxBytes: number): { events: DeployEvent[]; truncated: boolean };
};

export function createRunLog(options: { startedAt: number; maxOutputBytes: number; now?: () => number }): RunLog {
  const now = options.now ?? Date.now;
  const events: DeployEvent[] = [];
  const listeners = new Set<(event: DeployEvent) => void>();
  let outputBytes = 0;
  let truncated = false;
  let done = false;

  return {
    events,
    get truncated() {
      return truncated;
    },
    get done() {
      return done;
    },
    emit(input) {
      return this.append({ ...input, at: Math.max(0, now() - options.startedAt) } as DeployEvent);
    },
    append(event) {
      if (done) return event;
      if (event.type === 'done') done = true;
      let keep = true;
      if (event.type === 'output') {
        outputBytes += Buffer.byteLength(event.text);
        if (outputBytes > options.maxOutputBytes) {
          keep = false;
          if (!truncated) {
            truncated = true;
            events.push({ type: 'warning', at: event.at, message: `the log keeps the first ${Math.round(options.maxOutputBytes / 1024)} KiB of output; later output was shown live only` });
          }
        }
      }
      if (keep) events.push(event);
      for (const listener of [...listeners]) listener(event);
      return event;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    snapshot(maxBytes) {
      const out: DeployEvent[] = [];
      let bytes = 0;
      let cut = truncated;
      for (const event of events) {
        if (event.type === 'output') {
          bytes += Buffer.byteLength(event.text);
          if (bytes > maxBytes) {
            cut = true;
            continue;
          }
        }
        out.push(event);
      }
      return { events: out, truncated: cut };
    },
  };
}

/** The history entry without its log, as listed. */
export function summariseRun(run: DeployRun): DeployRun {
  const { events: _events, ...rest } = run;
  return rest;
}
