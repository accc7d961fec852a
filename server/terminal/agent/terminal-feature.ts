import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentFeature } from '../../agent/index.ts';
import { ok, fail, type Result } from '../../common/index.ts';
import type { FanoutSink } from '../fanout.ts';
import { createTypedFrameDecoder, dataFrameOf, encodeJsonFrame } from '../frames.ts';
import { createClientLimits, type ClientLimits } from './client-limits.ts';
import { TERMINAL_SUBSYSTEM, type AgentFailureCode, type AgentReply, type AttachPrincipal, type CreateTerminalRequest } from '../protocol.ts';
import type { Attachment, PtyTerminal, PtyTerminalLimits } from './pty-terminal.ts';
// Type only: the module (with @xterm/headless) is loaded with the first terminal, below.
import type { ScreenOptions, Screen } from './screen.ts';

export type TerminalFeatureOptions = {
  /** Workspace root as the agent sees it; terminals may not start outside it. */
  root: string;
  shell: string;
  /** Base environment of workspace processes. */
  env: Record<string, string>;
  limits: PtyTerminalLimits & { maxTerminals: number; maxFrameBytes: number; clients: ClientLimits };
  log: (event: string, fields?: Record<string, unknown>) => void;
};

const MAX_DIMENSION = 1000;
const MAX_ARGS = 256;
const MAX_ENV = 256;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Failure = { code: AgentFailureCode; message: string };

function refuseBadRequest(message: string): { ok: false; error: Failure } {
  return fail({ code: 'bad_request', message });
}

/** A `join`'s principal, exactly as the protocol allows it, or undefined. */
function readPrincipal(value: unknown): AttachPrincipal | undefined {
  const p = value as { kind?: unknown; id?: unknown } | null;
  if (p?.kind === 'admin') return { kind: 'admin' };
  if (p?.kind === 'share' && typeof p.id === 'string' && p.id.length > 0 && p.id.length <= 64) return { kind: 'share', id: p.id };
  return undefined;
}

function isDimension(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_DIMENSION;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findExecutable(command: string, cwd: string, path: string): string | undefined {
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolve(cwd, command);
    return isExecutable(full) ? full : undefined;
  }
  for (const dir of path.split(delimiter)) {
    if (dir && isExecutable(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

type Corkable = { cork(): void; uncork(): void };

/**
 * ssh2 writes every SSH packet (at most 32 KB) to the socket on its own; a 64 KB output frame
 * would cost three system calls. Corking the connection's socket for the frame makes it one
 * writev. The socket is an ssh2 internal: without it, frames simply go out uncorked.
 */
function corkConnection(stream: Duplex): () => void {
  const socket = (stream as unknown as { _client?: { _sock?: Partial<Corkable> } })._client?._sock;
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return () => {};
  socket.cork();
  return () => process.nextTick(() => (socket as Corkable).uncork());
}

type Launch = { file: string; args: string[]; cwd: string; cwdLabel: string; env: Record<string, string>; cols: number; rows: number };

/** Validates a create request: everything a client sends is checked here, in the workspace. */
export function planLaunch(request: CreateTerminalRequest, options: Pick<TerminalFeatureOptions, 'root' | 'shell' | 'env'>): Result<Launch, Failure> {
  const cols = request.cols ?? 80;
  const rows = request.rows ?? 24;
  if (!isDimension(cols) || !isDimension(rows)) return refuseBadRequest(`"cols" and "rows" must be integers from 1 to ${MAX_DIMENSION}`);

  const env: Record<string, string> = { ...options.env, TERM: 'xterm-256color', COLORTERM: 'truecolor' };
  if (request.env !== undefined) {
    if (!request.env || typeof request.env !== 'object' || Array.isArray(request.env)) return refuseBadRequest('"env" must be an object of strings');
    const entries = Object.entries(request.env);
    if (entries.length > MAX_ENV) return refuseBadRequest(`"env" may hold at most ${MAX_ENV} variables`);
    for (const [name, value] of entries) {
      if (!ENV_NAME.test(name) || typeof value !== 'string' || value.includes('\0')) {
        return refuseBadRequest(`"env.${name}" must be a variable name with a string value`);
      }
      env[name] = value;
    }
  }

  let realRoot: string;
  try {
    realRoot = realpathSync(options.root);
  } catch {
    return fail({ code: 'internal', message: 'the workspace root is missing' });
  }
  if (request.cwd !== undefined && (typeof request.cwd !== 'string' || request.cwd.includes('\0'))) return refuseBadRequest('"cwd" must be a path');
  let cwd: string;
  try {
    cwd = realpathSync(resolve(realRoot, request.cwd ?? '.'));
  } catch {
    return refuseBadRequest(`"cwd" does not exist: ${request.cwd}`);
  }
  if (cwd !== realRoot && !cwd.startsWith(realRoot + sep)) return refuseBadRequest('"cwd" must be inside the workspace');
  if (!statSync(cwd).isDirectory()) return refuseBadRequest(`"cwd" is not a directory: ${request.cwd}`);

  let file = options.shell;
  let args = ['-l'];
  if (request.command !== undefined) {
    if (typeof request.command !== 'string' || !request.command || request.command.includes('\0')) return refuseBadRequest('"command" must be a non-empty string');
    const found = findExecutable(request.command, cwd, env.PATH ?? '');
    if (!found) return refuseBadRequest(`command not found: ${request.command}`);
    file = found;
    args = [];
  }
  if (request.args !== undefined) {
    if (request.command === undefined) return refuseBadRequest('"args" needs a "command"');
    if (!Array.isArray(request.args) || request.args.length > MAX_ARGS || request.args.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      return refuseBadRequest(`"args" must be an array of at most ${MAX_ARGS} strings`);
    }
    args = request.args;
  }
  return ok({ file, args, cwd, cwdLabel: relative(realRoot, cwd) || '.', env, cols, rows });
}

/**
 * The agent's shared terminals, served on the `wharf-terminal` subsystem. The first frame of a
 * channel is a request: `list`, `create` and `kill` are answered with one frame and the channel
 * ends; `attach` turns the channel into a live stream of the terminal.
 */
export function createTerminalFeature(options: TerminalFeatureOptions): AgentFeature {
  const terminals = new Map<string, PtyTerminal>();
  // @xterm/headless takes about a tenth of the agent's start-up to load and stays in its heap, and
  // node-pty loads its add-on and node's tty module: an agent that never opens a terminal (most of
  // a workspace's life, or a preview or files only) starts faster and smaller without them.
  // esbuild keeps a dynamic import of a bundled module lazy.
  let modules: Promise<{ createScreen: (options: ScreenOptions) => Screen; createPtyTerminal: typeof import('./pty-terminal.ts').createPtyTerminal }> | undefined;
  const loadModules = () =>
    (modules ??= Promise.all([import('./screen.ts'), import('./pty-terminal.ts')]).then(([screen, ptyTerminal]) => ({ createScreen: screen.createScreen, createPtyTerminal: ptyTerminal.createPtyTerminal })));
  const clientLimits = createClientLimits(options.limits.clients);

  function reply(stream: Duplex, message: AgentReply): void {
    stream.end(encodeJsonFrame(message));
  }

  async function create(request: CreateTerminalRequest): Promise<AgentReply> {
    const { createScreen, createPtyTerminal } = await loadModules();
    if (terminals.size >= options.limits.maxTerminals) {
      return { ok: false, error: { code: 'conflict', message: `this workspace already has ${options.limits.maxTerminals} terminals; close one first` } };
    }
    const plan = planLaunch(request, options);
    if (!plan.ok) return plan;
    const id = randomBytes(6).toString('hex');
    let terminal: PtyTerminal;
    try {
      terminal = createPtyTerminal({
        id,
        ...plan.value,
        env: { ...plan.value.env, WHARF_TERMINAL: id },
        limits: options.limits,
        createScreen,
        onRemoved: () => terminals.delete(id),
        log: options.log,
      });
    } catch (err) {
      return { ok: false, error: { code: 'bad_request', message: `cannot start ${plan.value.file}: ${(err as Error).message}` } };
    }
    terminals.set(id, terminal);
    options.log('terminal.created', { terminal: id, command: plan.value.file });
    return { ok: true, terminal: terminal.info() };
  }

  function attach(stream: Duplex, request: Record<string, unknown>): Attachment | undefined {
    const terminal = terminals.get(String(request.id));
    if (!terminal) {
      reply(stream, { ok: false, error: { code: 'not_found', message: `no terminal "${String(request.id)}" in this workspace` } });
      return undefined;
    }
    const size = isDimension(request.cols) && isDimension(request.rows) ? { cols: request.cols, rows: request.rows } : null;
    const sink: FanoutSink = {
      snapshot: (snapshot, kind, done) => stream.write(encodeJsonFrame({ type: 'snapshot', kind, ...snapshot }), done),
      output: (data, done) => {
        const uncork = corkConnection(stream);
        stream.write(dataFrameOf(data), done);
        uncork();
      },
      event: (event, done) => stream.write(encodeJsonFrame(event), done),
    };
    return terminal.attach(
      sink,
      (reason) => {
        stream.write(encodeJsonFrame({ type: 'closed', reason }));
        stream.end();
      },
      size,
    );
  }

  function serve(stream: Duplex): void {
    let attachment: Attachment | undefined;
    /** What an `attach` asked for; the channel joins the pty at its first admitted client. */
    let target: { id: string; request: Record<string, unknown> } | undefined;
    /** This channel's admitted clients, by the server's client number, with their release. */
    const members = new Map<number, () => void>();
    let started = false;
    stream.on('error', () => {});

    function join(message: Record<string, unknown>): void {
      const cid = message.cid;
      const principal = readPrincipal(message.principal);
      if (!Number.isSafeInteger(cid) || members.has(cid as number) || !principal || !target) {
        stream.write(encodeJsonFrame({ type: 'error', code: 'bad_request', message: 'a join needs a new integer "cid" and a principal' }));
        return;
      }
      if (!attachment && !terminals.has(target.id)) {
        reply(stream, { ok: false, error: { code: 'not_found', message: `no terminal "${target.id}" in this workspace` } });
        return;
      }
      const admitted = clientLimits.admit(target.id, principal);
      if (!admitted.ok) {
        stream.write(encodeJsonFrame({ type: 'refuse', cid, code: 'too_many', message: admitted.error }));
        return;
      }
      members.set(cid as number, admitted.value);
      stream.write(encodeJsonFrame({ type: 'admit', cid }));
      attachment ??= attach(stream, target.request);
    }
    const decoder = createTypedFrameDecoder(options.limits.maxFrameBytes, {
      onError: (message) => {
        if (!attachment && !target) return reply(stream, { ok: false, error: { code: 'bad_request', message } });
        stream.write(encodeJsonFrame({ type: 'error', code: 'bad_request', message }));
        if (message.includes('exceeds')) stream.end();
      },
      onData: (data) => attachment?.input(data),
      onJson: (message) => {
        if (!started) {
          started = true;
          switch (message.op) {
            case 'list':
              return reply(stream, { ok: true, terminals: [...terminals.values()].map((t) => t.info()) });
            case 'create':
              return void create(message as CreateTerminalRequest).then(
                (answer) => reply(stream, answer),
                (err: Error) => reply(stream, { ok: false, error: { code: 'bad_request', message: `cannot start a terminal: ${err.message}` } }),
              );
            case 'kill': {
              const terminal = terminals.get(String(message.id));
              if (!terminal) return reply(stream, { ok: false, error: { code: 'not_found', message: `no terminal "${String(message.id)}" in this workspace` } });
              terminal.kill();
              return reply(stream, { ok: true });
            }
            case 'attach':
              if (!terminals.has(String(message.id))) {
                return reply(stream, { ok: false, error: { code: 'not_found', message: `no terminal "${String(message.id)}" in this workspace` } });
              }
              target = { id: String(message.id), request: message };
              return;
            default:
              return reply(stream, { ok: false, error: { code: 'bad_request', message: `unknown op "${String(message.op)}"` } });
          }
        }
        if (message.type === 'join') return join(message);
        if (message.type === 'leave') {
          members.get(Number(message.cid))?.();
          members.delete(Number(message.cid));
          return;
        }
        if (!attachment) return;
        switch (message.type) {
          case 'size':
            return attachment.setSize(isDimension(message.cols) && isDimension(message.rows) ? { cols: message.cols, rows: message.rows } : null);
          case 'clients':
            return attachment.setClients(Number.isInteger(message.count) && (message.count as number) >= 0 ? (message.count as number) : 1);
          case 'snapshot':
            return attachment.requestSnapshot(Number(message.rid) || 0);
          default:
            stream.write(encodeJsonFrame({ type: 'error', code: 'bad_request', message: `unknown message type "${String(message.type)}"` }));
        }
      },
    });
    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    stream.on('close', () => {
      for (const release of members.values()) release();
      members.clear();
      attachment?.detach();
    });
  }

  return {
    subsystems: { [TERMINAL_SUBSYSTEM]: (stream) => serve(stream) },
    async shutdown() {
      for (const terminal of [...terminals.values()]) terminal.hangUp();
    },
  };
}
