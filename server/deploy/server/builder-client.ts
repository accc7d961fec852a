import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { fail, ok, type Result } from '../../common/index.ts';
import { decodeBuildkitStatus } from './buildkit-status.ts';

/**
 * A small Docker Engine API client for `POST /build`: BuildKit (`version=2`) on Docker, whose
 * progress comes as protobuf status messages, and the classic JSON stream on engines without
 * BuildKit (Podman's compat API).
 */
export type BuilderEndpoint = { display: string; socketPath?: string; host?: string; port?: number };

export type BuilderInfo = { engine: 'docker' | 'podman'; version: string; buildkit: boolean };

export function parseBuilderEndpoint(value: string): Result<BuilderEndpoint, string> {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) return fail(`builder "${value}": a unix socket needs an absolute path (unix:///var/run/docker.sock)`);
    return ok({ display: value, socketPath });
  }
  const match = /^(?:tcp|http):\/\/([^/:]+|\[[^\]]+\]):(\d+)\/?$/.exec(value);
  if (match) return ok({ display: value, host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) });
  return fail(`builder "${value}" is not understood: use unix:///path/to/docker.sock or tcp://host:port`);
}

function send(endpoint: BuilderEndpoint, method: string, path: string, headers: Record<string, string>, timeoutMs?: number): ClientRequest {
  const req = request({ socketPath: endpoint.socketPath, host: endpoint.host, port: endpoint.port, method, path, headers });
  if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
  return req;
}

function readBody(res: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function unreachable(endpoint: BuilderEndpoint, err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT' ? 'the socket does not exist' : code === 'ECONNREFUSED' ? 'nothing is listening there' : code === 'EACCES' ? 'permission denied' : err.message;
  return `cannot reach the builder at ${endpoint.display}: ${why}`;
}

function engineMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: string };
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON: the raw text is the best we have
  }
  return text.trim().slice(0, 500);
}

/** Asks the engine what it is, which also tells whether it can be reached at all. */
export function probeBuilder(endpoint: BuilderEndpoint, timeoutMs: number): Promise<Result<BuilderInfo, string>> {
  return new Promise((resolve) => {
    const req = send(endpoint, 'GET', '/version', {}, timeoutMs);
    req.on('error', (err) => resolve(fail(unreachable(endpoint, err))));
    req.on('response', (res) => {
      readBody(res).then(
        (text) => {
          if (res.statusCode !== 200) return resolve(fail(`the builder at ${endpoint.display} answered ${res.statusCode}: ${engineMessage(text)}`));
          try {
            const info = JSON.parse(text) as { Version?: string; Components?: Array<{ Name?: string }> };
            const podman = (info.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
            resolve(ok({ engine: podman ? 'podman' : 'docker', version: info.Version ?? 'unknown', buildkit: !podman }));
          } catch {
            resolve(fail(`the builder at ${endpoint.display} does not look like a Docker Engine API`));
          }
        },
        (err: Error) => resolve(fail(unreachable(endpoint, err))),
      );
    });
    req.end();
  });
}

export type BuildCallbacks = {
  /** A build step started (BuildKit vertex, or a classic `STEP n/m:` line). */
  onStep(name: string): void;
  /** Output bytes of a step; `source` keeps streams apart so lines can be reassembled. */
  onOutput(source: string, data: Buffer): void;
  onWarning(message: string): void;
};

/** `imageId`: the image the build produced (both engines report it as `aux.ID`), to remove it. */
export type BuildOutcome = ({ ok: true } | { ok: false; message: string; requestFailed: boolean }) & { imageId?: string };

export type BuildOptions = {
  endpoint: BuilderEndpoint;
  info: BuilderInfo;
  body: Readable;
  buildArgs: Record<string, string>;
  signal: AbortSignal;
};

export function runBuild(options: BuildOptions, callbacks: BuildCallbacks): Promise<BuildOutcome> {
  const query = new URLSearchParams({ dockerfile: 'Dockerfile', networkmode: 'host', rm: '1', forcerm: '1', buildargs: JSON.stringify(options.buildArgs) });
  if (options.info.buildkit) query.set('version', '2');
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: BuildOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const req = send(options.endpoint, 'POST', `/build?${query}`, { 'content-type': 'application/x-tar' });
    const abort = () => {
      req.destroy(new Error('the build was cancelled'));
      options.body.destroy();
    };
    if (options.signal.aborted) abort();
    options.signal.addEventListener('abort', abort, { once: true });
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      const beforeConnect = code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES';
      finish({ ok: false, message: beforeConnect ? unreachable(options.endpoint, err) : `the builder connection failed: ${err.message}`, requestFailed: true });
    });
    options.body.on('error', (err: Error) => {
      req.destroy(err);
      finish({ ok: false, message: err.message, requestFailed: true });
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        void readBody(res).then((text) => finish({ ok: false, message: `the builder refused the build (${res.statusCode}): ${engineMessage(text)}`, requestFailed: true }));
        return;
      }
      let failure: string | undefined;
      let imageId: string | undefined;
      let buffered = '';
      const reported = new Set<string>();
      const vertexNames = new Map<string, string>();
      let classicLine = '';
      const classicText = (text: string) => {
        // Classic builders interleave step headers and RUN output in one text stream.
        const lines = (classicLine + text).split('\n');
        classicLine = lines.pop() as string;
        let plain = '';
        for (const line of lines) {
          if (/^(STEP|Step) \d+\/\d+ ?: /.test(line)) {
            if (plain) callbacks.onOutput('classic', Buffer.from(plain));
            plain = '';
            callbacks.onStep(line.replace(/^(STEP|Step) /, '').trim());
          } else plain += `${line}\n`;
        }
        if (plain) callbacks.onOutput('classic', Buffer.from(plain));
      };
      const handle = (message: Record<string, unknown>) => {
        if (message.id === 'moby.buildkit.trace' && typeof message.aux === 'string') {
          let status;
          try {
            status = decodeBuildkitStatus(message.aux);
          } catch {
            return;
          }
          for (const vertex of status.vertexes) {
            if (vertex.name) vertexNames.set(vertex.digest, vertex.name);
            if ((vertex.started || vertex.completed) && !reported.has(vertex.digest) && vertex.name) {
              reported.add(vertex.digest);
              callbacks.onStep(vertex.cached ? `${vertex.name} (cached)` : vertex.name);
            }
          }
          for (const log of status.logs) callbacks.onOutput(`${log.vertex}:${log.stream}`, log.data);
          for (const warning of status.warnings) callbacks.onWarning(warning);
          return;
        }
        const aux = message.aux as { ID?: unknown } | undefined;
        if (aux && typeof aux === 'object' && typeof aux.ID === 'string') imageId = aux.ID;
        const detail = message.errorDetail as { message?: string } | undefined;
        if (detail?.message || typeof message.error === 'string') {
          failure ??= detail?.message ?? String(message.error);
          return;
        }
        if (typeof message.stream === 'string') classicText(message.stream);
        else if (typeof message.status === 'string' && message.status) callbacks.onOutput('status', Buffer.from(`${message.status}\n`));
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (buffered + chunk).split('\n');
        buffered = lines.pop() as string;
        for (const line of lines) {
          if (!line.trim()) continue;
          try {
            handle(JSON.parse(line) as Record<string, unknown>);
          } catch {
            callbacks.onOutput('engine', Buffer.from(`${line}\n`));
          }
        }
      });
      res.on('end', () => {
        if (buffered.trim()) {
          try {
            handle(JSON.parse(buffered) as Record<string, unknown>);
          } catch {
            // a torn last line carries nothing we can use
          }
        }
        if (classicLine) classicText('\n');
        finish(failure ? { ok: false, message: failure.trim(), requestFailed: false, imageId } : { ok: true, imageId });
      });
      res.on('error', (err) => finish({ ok: false, message: `the builder connection failed: ${err.message}`, requestFailed: false }));
      res.on('close', () => {
        if (!res.complete) finish({ ok: false, message: failure ?? 'the builder closed the connection before the build ended', requestFailed: false });
      });
    });
    options.body.pipe(req);
  });
}

/**
 * Removes the image a run produced: it is of no use after the run, and left alone every run
 * would add one to the builder's disk. Its base image is tagged and stays.
 */
export function removeImage(endpoint: BuilderEndpoint, imageId: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const req = send(endpoint, 'DELETE', `/images/${encodeURIComponent(imageId)}?noprune=false`, {}, timeoutMs);
    req.on('error', (err) => resolve({ ok: false, error: err.message }));
    req.on('response', (res) => {
      void readBody(res).then((text) => resolve(res.statusCode === 200 ? { ok: true } : { ok: false, error: `${res.statusCode}: ${engineMessage(text)}` }));
    });
    req.end();
  });
}
