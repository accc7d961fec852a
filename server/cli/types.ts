import type { Readable, Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { Result } from '../common/index.ts';
import type { CliConfig } from '../config/index.ts';

/**
 * Expected failures of the helper. Each becomes one `wharf: <message>` line on stderr and an
 * exit code (2 for usage errors, 1 otherwise).
 */
export type CliFailure = {
  code: 'usage' | 'not_logged_in' | 'unreachable' | 'unauthorized' | 'not_found' | 'conflict' | 'server' | 'local';
  message: string;
  /** HTTP status, when the failure is the server's answer. */
  status?: number;
};

export type CliIo = {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable;
};

export type RequestInit = {
  json?: unknown;
  /** Raw body (a stream is sent chunked, never buffered). */
  body?: Buffer | string | Readable;
  headers?: Record<string, string>;
  /** Override the request timeout; 0 waits forever (streaming responses). */
  timeoutMs?: number;
};

export type WebSocketOptions = {
  /**
   * Send frames with an all-zero masking key, which ws then neither applies nor removes (on the
   * server either). Only for the SSH tunnel: masking (RFC 6455 §5.3) keeps a web page from
   * choosing the bytes an intermediary sees, and a tunnel's bytes are SSH's — a fixed greeting,
   * then ciphertext — which nobody chooses. XOR-ing every byte in JavaScript on both ends (ws
   * has no native helper on Node 20) was the largest cost of a transfer from the laptop.
   */
  unmasked?: boolean;
};

/** The logged-in server. Non-2xx answers come back as failures carrying the server's message. */
export type ApiClient = {
  readonly url: string;
  request(method: string, path: string, init?: RequestInit): Promise<Result<Response, CliFailure>>;
  json<T>(method: string, path: string, init?: RequestInit): Promise<Result<T, CliFailure>>;
  /**
   * Opens an authenticated websocket; a refused upgrade (401, 404...) is a failure value. The
   * socket comes back paused so no early message is lost: attach listeners, then `resume()`
   * (`createWebSocketStream` resumes it by itself).
   */
  openWebSocket(path: string, options?: WebSocketOptions): Promise<Result<WebSocket, CliFailure>>;
  /**
   * POSTs a streamed body and answers with the response body as soon as the server answers
   * (the upload may still be going on). Unlike `request`, it says when each chunk has been
   * written out (`sent`), so the caller can reuse the chunk's memory. No timeout.
   */
  upload(path: string, init: { headers: Record<string, string>; chunks: AsyncIterable<Buffer>; sent?: (chunk: Buffer) => void }): Promise<Result<Readable, CliFailure>>;
};

export type CliContext = {
  config: CliConfig;
  io: CliIo;
  /** This helper's version (`wharf --version`). */
  helperVersion: string;
  /** The stored (or `WHARF_URL`/`WHARF_TOKEN`) server, or a failure saying how to log in. */
  api(): Promise<Result<ApiClient, CliFailure>>;
  /** A client of the server at `url` with `token` (`wharf login` checks one before saving it). */
  connect(credentials: { url: string; token: string }): ApiClient;
  /** Prints the failure as `wharf: <message>` and returns the exit code for it. */
  fail(failure: CliFailure): number;
};

export type CliOption = {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in help, e.g. `<file>`. */
  valueName?: string;
  description: string;
};

export type CliArgs = {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  /** Everything after `--`, or after `passthroughAfter` positionals, untouched. */
  rest: string[];
};

/**
 * One `wharf` command. To add one: write `server/cli/<name>-command.ts` exporting a
 * `CliCommand`, and add it to the list in `server/cli/commands.ts`.
 */
export type CliCommand = {
  /** Words that select it: `['login']`, `['agent', 'bridge']`, `['terminal', 'attach']`. */
  name: string[];
  summary: string;
  /** Synopsis after `wharf `, e.g. `login <url> --token <token>`. */
  usage: string;
  /** Longer help text (plain lines). */
  description?: string;
  options?: Record<string, CliOption>;
  /**
   * After this many positionals the rest of the command line is passed through untouched in
   * `rest` (so `wharf ssh ws1 ls -la` does not try to parse `-la`).
   */
  passthroughAfter?: number;
  run(ctx: CliContext, args: CliArgs): Promise<number>;
};
