import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import WebSocket from 'ws';
import { fail, ok, type Result } from '../common/index.ts';
import type { Credentials } from './credentials.ts';
import type { ApiClient, CliFailure, RequestInit, WebSocketOptions } from './types.ts';
import { SERVER_VERSION_HEADER } from './version-notice.ts';

/** The server's error message in an error answer's body, else the start of the body. */
function messageOf(text: string, statusText: string, status: number): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim().slice(0, 300) || statusText || `HTTP ${status}`;
}

async function serverMessage(res: Response): Promise<string> {
  return messageOf(await res.text().catch(() => ''), res.statusText, res.status);
}

export function failureForStatus(url: string, status: number, message: string): CliFailure {
  if (status === 401) {
    return {
      code: 'unauthorized',
      status,
      message: `the server at ${url} refused the token (401 Unauthorized); run "wharf login ${url} --token <token>" again`,
    };
  }
  if (status === 404) return { code: 'not_found', status, message };
  if (status === 409) return { code: 'conflict', status, message };
  return { code: 'server', status, message: `${message} (HTTP ${status})` };
}

function unreachable(url: string, err: unknown): CliFailure {
  const e = err as Error & { cause?: { message?: string; code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return { code: 'unreachable', message: `the wharf server at ${url} did not answer in time` };
  }
  const reason = e.cause?.message ?? e.message;
  return { code: 'unreachable', message: `cannot reach the wharf server at ${url}: ${reason}` };
}

function drainedOrClosed(req: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

export type ApiClientOptions = {
  requestTimeoutMs: number;
  /** Sees the server's version (its `X-Wharf-Version` header) on every answer, refusals included. */
  onServerVersion?: (serverUrl: string, version: string | undefined) => void;
};

export function createApiClient(credentials: Credentials, options: ApiClientOptions): ApiClient {
  const { url, token } = credentials;
  const sawHeaders = (headers: Headers | Record<string, string | string[] | undefined>) => {
    if (!options.onServerVersion) return;
    const value = headers instanceof Headers ? headers.get(SERVER_VERSION_HEADER) : headers[SERVER_VERSION_HEADER];
    options.onServerVersion(url, (Array.isArray(value) ? value[0] : value) ?? undefined);
  };

  async function request(method: string, path: string, init: RequestInit = {}): Promise<Result<Response, CliFailure>> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(init.headers ?? {}) };
    let body: BodyInit | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.body instanceof Readable) {
      body = init.body as unknown as BodyInit;
    } else if (init.body !== undefined) {
      body = typeof init.body === 'string' ? init.body : new Uint8Array(init.body);
    }
    const timeoutMs = init.timeoutMs ?? options.requestTimeoutMs;
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, {
        method,
        headers,
        body,
        redirect: 'manual',
        signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
        // Needed by fetch for a streamed request body.
        ...(init.body instanceof Readable ? { duplex: 'half' } : {}),
      } as globalThis.RequestInit);
    } catch (err) {
      return fail(unreachable(url, err));
    }
    sawHeaders(res.headers);
    if (res.status >= 200 && res.status < 300) return ok(res);
    return fail(failureForStatus(url, res.status, await serverMessage(res)));
  }

  function upload(path: string, init: { headers: Record<string, string>; chunks: AsyncIterable<Buffer>; sent?: (chunk: Buffer) => void }): Promise<Result<Readable, CliFailure>> {
    return new Promise((resolve) => {
      const target = new URL(`${url}${path}`);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(target, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...init.headers } }, (res) => {
        sawHeaders(res.headers);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(ok(res));
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(fail(failureForStatus(url, status, messageOf(text, res.statusMessage ?? '', status)))));
        res.on('error', (err) => resolve(fail(unreachable(url, err))));
      });
      // A promise settles once: an error after the answer came is seen by the answer's reader.
      req.on('error', (err) => resolve(fail(unreachable(url, err))));
      void (async () => {
        for await (const chunk of init.chunks) {
          if (req.destroyed) return;
          // The callback runs once the chunk has been written to the socket, not merely queued.
          const more = req.write(chunk, init.sent && (() => init.sent?.(chunk)));
          if (!more) await drainedOrClosed(req);
        }
        req.end();
      })().catch((err: Error) => req.destroy(err));
    });
  }

  return {
    url,
    request,
    upload,
    async json<T>(method: string, path: string, init?: RequestInit): Promise<Result<T, CliFailure>> {
      const res = await request(method, path, init);
      if (!res.ok) return res;
      if (res.value.status === 204) return ok(undefined as T);
      try {
        return ok((await res.value.json()) as T);
      } catch {
        return fail({ code: 'server', message: `the server at ${url} sent a response that is not JSON for ${method} ${path}` });
      }
    },
    openWebSocket(path: string, wsOptions: WebSocketOptions = {}): Promise<Result<WebSocket, CliFailure>> {
      return new Promise((resolve) => {
        const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          perMessageDeflate: false,
          handshakeTimeout: options.requestTimeoutMs,
          ...(wsOptions.unmasked ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
        });
        let settled = false;
        const settle = (result: Result<WebSocket, CliFailure>) => {
          if (settled) return;
          settled = true;
          resolve(result);
        };
        ws.once('open', () => {
          // Bytes that came with the 101 answer are emitted on the next tick, before whoever
          // awaits this promise can listen: hold them until the caller resumes the socket.
          ws.pause();
          settle(ok(ws));
        });
        ws.once('upgrade', (res) => sawHeaders(res.headers));
        ws.on('unexpected-response', (req, res) => {
          sawHeaders(res.headers);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            req.destroy();
            const status = res.statusCode ?? 0;
            settle(fail(failureForStatus(url, status, text.trim() || res.statusMessage || `HTTP ${status}`)));
          });
        });
        ws.on('error', (err) => settle(fail(unreachable(url, err))));
      });
    },
  };
}
