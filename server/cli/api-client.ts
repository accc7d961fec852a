import { Readable } from 'node:stream';
import WebSocket from 'ws';
import { fail, ok, type Result } from '../common/index.ts';
import type { Credentials } from './credentials.ts';
import type { ApiClient, CliFailure, RequestInit } from './types.ts';

async function serverMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim().slice(0, 300) || res.statusText || `HTTP ${res.status}`;
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

export function createApiClient(credentials: Credentials, options: { requestTimeoutMs: number }): ApiClient {
  const { url, token } = credentials;

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
    if (res.status >= 200 && res.status < 300) return ok(res);
    return fail(failureForStatus(url, res.status, await serverMessage(res)));
  }

  return {
    url,
    request,
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
    openWebSocket(path: string): Promise<Result<WebSocket, CliFailure>> {
      return new Promise((resolve) => {
        const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          perMessageDeflate: false,
          handshakeTimeout: options.requestTimeoutMs,
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
        ws.on('unexpected-response', (req, res) => {
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
