/**
 * One measured result beside the same measurement of a peer (another tool doing the same job),
 * so every number in docs/benchmarks.md has something to be compared with.
 */
export type BenchRow = {
  /** What was done, e.g. "pack 30k-file repo". */
  scenario: string;
  /** What was measured, with its unit, e.g. "p50 latency (ms)". */
  metric: string;
  /** wharf's result, already formatted. */
  wharf: string;
  /** The peer's result for the same metric, already formatted. */
  peer: string;
  /** Which peer, e.g. "GNU tar 1.34". */
  peerName: string;
  /** What we aim for, e.g. "≤ peer". */
  goal?: string;
};

/** Engines a scenario needs; the runner starts them as `npm test` does and exports the same variables. */
export type BenchEngine = 'docker' | 'podman' | 'chromium';

/** The shape of a `bench/*.bench.ts` file. */
export type BenchModule = {
  run(): Promise<BenchRow[]>;
  /** Optional: engines to start before `run`. Files that read WHARF_TEST_* variables are detected anyway. */
  engines?: BenchEngine[];
};
