import type { IncomingMessage } from 'node:http';
import { addAbortSignal, type Duplex, type Readable, type Writable } from 'node:stream';
import type DockerModem from 'docker-modem';
import { fail, ok, type Result } from '../common/index.ts';
import type { EngineEndpoint } from './endpoint.ts';

/**
 * The Docker Engine API transport (Docker, and Podman's compatible API), shared by deploys (the
 * builder) and the docker workspace driver.
 *
 * It is docker-modem, the transport under dockerode, and not HTTP written by hand: docker-modem
 * is maintained with the engine's quirks in mind (unix sockets and named pipes, TLS, ssh, upgraded
 * connections for attach/exec, stream demultiplexing) that a workspace driver needs and that a
 * hand-written client would have to grow and keep right by itself. Not dockerode: that loads
 * @grpc/grpc-js, and wharf only needs the transport. docker-modem is loaded on first use, so a
 * server that never talks to an engine does not load it.
 */
export type EngineFailure = {
  /**
   * `unreachable`: no connection was made (no socket, nothing listening, permission denied);
   * `timeout`: no full answer within the request's time; `aborted`: the caller's signal;
   * `failed`: the connection broke or the engine's answer could not be read.
   */
  kind: 'unreachable' | 'timeout' | 'aborted' | 'failed';
  message: string;
};

export type EngineRequest = {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  /** Path without the query (`/build`, `/images/<id>`); its parts already URL-encoded. */
  path: string;
  query?: Record<string, string>;
  /** Streamed as the request body (a build context). Not destroyed here on cancel: the caller owns it. */
  upload?: { stream: Readable; contentType: string };
  /** A JSON request body (an empty object is sent as no body). */
  json?: unknown;
  /** Cancels the request, and the answer while it is read. */
  signal?: AbortSignal;
  /** The whole exchange, answer included, ends with a `timeout` failure after this long. */
  timeoutMs?: number;
};

/** The engine's answer of any status; `body` still to be read (or destroyed) by the caller. */
export type EngineAnswer = { status: number; body: IncomingMessage };

export type EngineClient = {
  readonly endpoint: EngineEndpoint;
  /** Resolves once the answer's head has come, whatever its status. */
  send(request: EngineRequest): Promise<Result<EngineAnswer, EngineFailure>>;
  /** send(), then the answer's text (at most `limit` bytes kept). */
  fetchText(request: EngineRequest, limit?: number): Promise<Result<{ status: number; text: string }, EngineFailure>>;
  /**
   * A POST answered by upgrading the connection (`/exec/<id>/start`, `/containers/<id>/attach`):
   * the raw connection, both ways. `demux` splits an answer that is multiplexed (no tty: 8-byte
   * frame headers) into two writables, docker-modem's demuxer.
   */
  hijack(request: { path: string; json: unknown; timeoutMs?: number }): Promise<Result<HijackedStream, EngineFailure>>;
};

export type HijackedStream = { socket: Duplex; demux(stdout: Writable, stderr: Writable): void };

/**
 * docker-modem turns a status it is not told to accept into an Error of its own wording
 * (`(HTTP code 404) unexpected - …`); every status is accepted instead, and callers word the
 * engine's refusals themselves.
 */
const ANY_STATUS: Record<number, true> = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [i + 100, true]));

let modemClass: Promise<typeof DockerModem> | undefined;

function loadModem(): Promise<typeof DockerModem> {
  modemClass ??= import('docker-modem').then((m) => m.default);
  return modemClass;
}

/**
 * Every setting is given, so none comes from the environment: docker-modem reads DOCKER_HOST,
 * DOCKER_CERT_PATH, DOCKER_TLS_VERIFY and DOCKER_CLIENT_TIMEOUT as defaults of its own, and in
 * wharf only server/config reads the environment (the endpoint comes from there). No `timeout`:
 * requests take an AbortSignal instead.
 */
function modemOptions(endpoint: EngineEndpoint): DockerModem.ConstructorOptions & { pathPrefix: string } {
  return {
    socketPath: endpoint.socketPath,
    host: endpoint.socketPath ? undefined : endpoint.host,
    port: endpoint.socketPath ? undefined : endpoint.port,
    protocol: 'http',
    pathPrefix: '/',
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: undefined,
    connectionTimeout: undefined,
    version: undefined,
    headers: {},
  };
}

/** Error codes of a connection that was never made. */
const NOT_CONNECTED: Record<string, string> = {
  ENOENT: 'the socket does not exist',
  ECONNREFUSED: 'nothing is listening there',
  EACCES: 'permission denied',
};

function describeError(err: Error, signal: AbortSignal | undefined, timeout: AbortSignal | undefined, timeoutMs: number | undefined): EngineFailure {
  if (signal?.aborted) return { kind: 'aborted', message: 'the request was cancelled' };
  if (timeout?.aborted) return { kind: 'timeout', message: `no answer within ${(timeoutMs as number) / 1000} s` };
  const code = (err as NodeJS.ErrnoException).code;
  if (code && NOT_CONNECTED[code]) return { kind: 'unreachable', message: NOT_CONNECTED[code] };
  return { kind: 'failed', message: err.message };
}

function readText(body: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    body.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    body.on('error', reject);
    body.on('close', () => {
      if (!body.complete) reject(new Error('the engine closed the connection before its answer ended'));
    });
  });
}

/** The engine's own words in an error answer (`{"message": …}`), or its raw text. */
export function engineMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: string };
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON: the raw text is the best we have
  }
  return text.trim().slice(0, 500);
}

export function createEngineClient(endpoint: EngineEndpoint): EngineClient {
  let modem: Promise<DockerModem> | undefined;
  const getModem = () => (modem ??= loadModem().then((Modem) => new Modem(modemOptions(endpoint))));

  /** The answer, and how to word a failure of the same request that comes while its body is read. */
  async function open(request: EngineRequest): Promise<{ answer: Result<EngineAnswer, EngineFailure>; describe: (err: Error) => EngineFailure }> {
    const timeout = request.timeoutMs ? AbortSignal.timeout(request.timeoutMs) : undefined;
    const signals = [request.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    const describe = (err: Error) => describeError(err, request.signal, timeout, request.timeoutMs);
    let client: DockerModem;
    try {
      client = await getModem();
    } catch (err) {
      // Its constructor reads the environment's DOCKER_* variables first, and throws on a malformed one.
      modem = undefined;
      return { answer: fail({ kind: 'failed', message: `cannot set up the Docker Engine API client: ${(err as Error).message}` }), describe };
    }
    const query = request.query ?? {};
    const hasQuery = Object.keys(query).length > 0;
    const answer = await new Promise<Result<EngineAnswer, EngineFailure>>((resolve) => {
      client.dial(
        {
          // docker-modem appends the query only to a path that ends in `?`.
          path: hasQuery ? `${request.path}?` : request.path,
          method: request.method,
          // `_body: {}` for no JSON body: docker-modem would otherwise send the query as the body of a POST.
          options: { _query: query, _body: request.json ?? {} },
          file: request.upload?.stream,
          headers: request.upload ? { 'Content-Type': request.upload.contentType } : {},
          isStream: true,
          statusCodes: ANY_STATUS,
          abortSignal: signal,
        },
        (err, result) => {
          if (err) return resolve(fail(describe(err)));
          const body = result as IncomingMessage;
          // docker-modem hands a streamed answer over as it is: the signal stops its reading too.
          addAbortSignal(signal, body);
          resolve(ok({ status: body.statusCode ?? 0, body }));
        },
      );
    });
    return { answer, describe };
  }

  async function hijack(request: { path: string; json: unknown; timeoutMs?: number }): Promise<Result<HijackedStream, EngineFailure>> {
    let client: DockerModem;
    try {
      client = await getModem();
    } catch (err) {
      modem = undefined;
      return fail({ kind: 'failed', message: `cannot set up the Docker Engine API client: ${(err as Error).message}` });
    }
    // Only the upgrade itself is bounded: the connection then lives as long as its user wants.
    const timeout = request.timeoutMs ? AbortSignal.timeout(request.timeoutMs) : undefined;
    return new Promise((resolve) => {
      let settled = false;
      const timer = request.timeoutMs
        ? setTimeout(() => {
            if (settled) return;
            settled = true;
            resolve(fail({ kind: 'timeout', message: `no answer within ${(request.timeoutMs as number) / 1000} s` }));
          }, request.timeoutMs)
        : undefined;
      client.dial(
        {
          path: request.path,
          method: 'POST',
          options: request.json as Record<string, unknown>,
          hijack: true,
          openStdin: true,
          isStream: true,
          // 101 is the upgrade; an engine that answers 200 and then streams (docker-modem gives
          // a duplex of request and response then) is taken too. Others are failures.
          statusCodes: { 101: true, 200: true, 201: true },
        },
        (err, result) => {
          clearTimeout(timer);
          const socket = result as Duplex | undefined;
          if (settled) {
            socket?.destroy();
            return;
          }
          settled = true;
          if (err) return resolve(fail(describeError(err, undefined, timeout, request.timeoutMs)));
          const demux = (stdout: Writable, stderr: Writable) => client.demuxStream(socket as Duplex, stdout, stderr);
          resolve(ok({ socket: socket as Duplex, demux }));
        },
      );
    });
  }

  return {
    endpoint,
    hijack,
    send: async (request) => (await open(request)).answer,
    async fetchText(request, limit = 1024 * 1024) {
      const { answer, describe } = await open(request);
      if (!answer.ok) return answer;
      try {
        return ok({ status: answer.value.status, text: await readText(answer.value.body, limit) });
      } catch (err) {
        return fail(describe(err as Error));
      }
    },
  };
}
