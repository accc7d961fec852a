import type { Readable } from 'node:stream';
import { fail, ok, type Result } from '../../common/index.ts';
import { createEngineClient, engineMessage, parseEngineEndpoint, type EngineClient, type EngineEndpoint, type EngineFailure } from '../../engine-api/index.ts';
import { decodeBuildkitStatus } from './buildkit-status.ts';

/**
 * `POST /build` on a Docker Engine API (server/engine-api): BuildKit (`version=2`) on Docker,
 * whose progress comes as protobuf status messages, and the classic JSON stream on engines
 * without BuildKit (Podman's compat API).
 */
export type BuilderEndpoint = EngineEndpoint;

export type BuilderInfo = { engine: 'docker' | 'podman'; version: string; buildkit: boolean };

export function parseBuilderEndpoint(value: string): Result<BuilderEndpoint, string> {
  return parseEngineEndpoint(value, 'builder');
}

/** One client per endpoint: docker-modem keeps its settings per instance. */
const clients = new Map<string, EngineClient>();

function clientOf(endpoint: BuilderEndpoint): EngineClient {
  let client = clients.get(endpoint.display);
  if (!client) {
    client = createEngineClient(endpoint);
    clients.set(endpoint.display, client);
  }
  return client;
}

function unreachable(endpoint: BuilderEndpoint, failure: EngineFailure): string {
  return `cannot reach the builder at ${endpoint.display}: ${failure.message}`;
}

/** Asks the engine what it is, which also tells whether it can be reached at all. */
export async function probeBuilder(endpoint: BuilderEndpoint, timeoutMs: number): Promise<Result<BuilderInfo, string>> {
  const answer = await clientOf(endpoint).fetchText({ method: 'GET', path: '/version', timeoutMs });
  if (!answer.ok) return fail(unreachable(endpoint, answer.error));
  const { status, text } = answer.value;
  if (status !== 200) return fail(`the builder at ${endpoint.display} answered ${status}: ${engineMessage(text)}`);
  try {
    const info = JSON.parse(text) as { Version?: string; Components?: Array<{ Name?: string }> };
    const podman = (info.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
    return ok({ engine: podman ? 'podman' : 'docker', version: info.Version ?? 'unknown', buildkit: !podman });
  } catch {
    return fail(`the builder at ${endpoint.display} does not look like a Docker Engine API`);
  }
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
  /** `name:address` entries for the build's /etc/hosts (`docker build --add-host`). */
  extraHosts?: string[];
  signal: AbortSignal;
};

export function runBuild(options: BuildOptions, callbacks: BuildCallbacks): Promise<BuildOutcome> {
  const query: Record<string, string> = { dockerfile: 'Dockerfile', networkmode: 'host', rm: '1', forcerm: '1', buildargs: JSON.stringify(options.buildArgs) };
  if (options.info.buildkit) query.version = '2';
  // dockerd takes the parameter once per entry (only one is ever passed here); Podman's compat
  // API takes one parameter holding a JSON list.
  if (options.extraHosts?.length) query.extrahosts = options.info.engine === 'podman' ? JSON.stringify(options.extraHosts) : options.extraHosts[0];
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: BuildOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    // The engine client stops the request; the context is ours to stop (the agent's packer, or
    // the CLI's upload, would otherwise go on).
    const abort = () => options.body.destroy();
    if (options.signal.aborted) abort();
    options.signal.addEventListener('abort', abort, { once: true });
    options.body.on('error', (err: Error) => finish({ ok: false, message: err.message, requestFailed: true }));
    void clientOf(options.endpoint)
      .send({ method: 'POST', path: '/build', query, upload: { stream: options.body, contentType: 'application/x-tar' }, signal: options.signal })
      .then((answer) => {
        if (!answer.ok) {
          const failure = answer.error;
          const message = failure.kind === 'unreachable' ? unreachable(options.endpoint, failure) : `the builder connection failed: ${failure.kind === 'aborted' ? 'the build was cancelled' : failure.message}`;
          return finish({ ok: false, message, requestFailed: true });
        }
        const res = answer.value.body;
        if (answer.value.status !== 200) {
          void readBody(res).then((text) => finish({ ok: false, message: `the builder refused the build (${answer.value.status}): ${engineMessage(text)}`, requestFailed: true }));
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
  });
}

/** An error answer's text (bounded); a broken connection gives what came. */
function readBody(res: Readable, limit = 1024 * 1024): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/**
 * Removes the image a run produced: it is of no use after the run, and left alone every run
 * would add one to the builder's disk. Its base image is tagged and stays.
 */
export async function removeImage(endpoint: BuilderEndpoint, imageId: string, timeoutMs: number): Promise<{ ok: true } | { ok: false; error: string }> {
  const answer = await clientOf(endpoint).fetchText({ method: 'DELETE', path: `/images/${encodeURIComponent(imageId)}`, query: { noprune: 'false' }, timeoutMs });
  if (!answer.ok) return { ok: false, error: answer.error.message };
  return answer.value.status === 200 ? { ok: true } : { ok: false, error: `${answer.value.status}: ${engineMessage(answer.value.text)}` };
}
