import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import { isWharfError, pipeDuplex, WharfError } from '../../common/index.ts';
import type { AgentConnection } from '../../workspace/index.ts';
import type { ListeningPort } from '../protocol.ts';
import type { PortWatch } from './port-watch.ts';
import { buildDownstreamHeaders, buildUpstreamHeaders, type PreviewForm } from './upstream-headers.ts';

export type PreviewProxyOptions = {
  agent: (workspace: string) => Promise<AgentConnection>;
  ports: PortWatch;
  /** Idle keep-alive channels kept per port, for the next request. */
  maxIdleChannels: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

export type ProxyRequest = {
  form: PreviewForm;
  /** Path and query the app is asked for. */
  path: string;
  dropAuthorization: boolean;
};

/** Which loopback address to dial: IPv4 unless the app listens on IPv6 loopback only. */
function pickHost(port: ListeningPort | undefined): string {
  if (!port) return '127.0.0.1';
  const v4 = port.addresses.some((a) => a === '0.0.0.0' || a === '::' || /^127\./.test(a));
  return v4 ? '127.0.0.1' : '::1';
}

/** ssh2's channel is a plain Duplex; http's client calls these socket methods on what it is given. */
function asSocket(channel: Duplex): Duplex {
  const socket = channel as Duplex & Record<string, unknown>;
  for (const name of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) socket[name] ??= () => socket;
  // The app closed its side (it stopped, or ended a keep-alive connection): HTTP has nothing more
  // to say on it, so end ours too. The agent closes a channel once both directions are done;
  // until then a pooled channel would look alive and the next request would wait on it forever.
  channel.once('end', () => channel.end());
  return socket;
}

/**
 * Keeps channels to one port of one workspace open between requests, as a keep-alive pool keeps
 * TCP connections: opening a direct-tcpip channel costs a round trip to the agent and a dial.
 */
class ChannelAgent extends Agent {
  constructor(
    private readonly open: () => Promise<Duplex>,
    maxFreeSockets: number,
  ) {
    super({ keepAlive: true, maxFreeSockets, maxSockets: 256 });
  }

  override createConnection(_options: unknown, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    this.open().then(
      (channel) => callback(null, asSocket(channel)),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}

/** Plain-text error answer: the preview may be an app's iframe, a fetch or a curl. */
function answerError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(message) + 1 });
  res.end(`${message}\n`);
}

/** The same, on a socket that asked for a websocket. */
function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const text = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/**
 * A one-way copy with back-pressure that tears both ends down on error. Not stream.pipeline: on
 * Node 20 every pipeline makes an AbortController and aborts it when done, building a
 * DOMException with a stack trace — two per proxied request, a tenth of the server's CPU under
 * load in the preview benchmark.
 */
function copyOneWay(from: Readable, to: Writable): void {
  from.pipe(to);
  from.once('error', () => to.destroy());
  to.once('error', () => from.destroy());
}

type Failure = { status: number; message: string };

export type PreviewProxy = ReturnType<typeof createPreviewProxy>;

/**
 * HTTP and websocket reverse proxy to a workspace's port, each connection a direct-tcpip channel
 * through the server's own SSH session with the agent: never the workspace's network address, so
 * it works the same on every driver, and the agent decides what may be reached. Bodies stream
 * both ways with back-pressure and are never buffered.
 */
export function createPreviewProxy(options: PreviewProxyOptions) {
  const agents = new Map<string, ChannelAgent>();

  function describeFailure(err: unknown, form: PreviewForm, listed: boolean): Failure {
    const what = `port ${form.port} of workspace "${form.workspace}"`;
    if ((err as { refused?: boolean }).refused) {
      return listed
        ? { status: 502, message: `${what} refused the connection (${(err as Error).message})` }
        : { status: 404, message: `nothing in workspace "${form.workspace}" listens on port ${form.port}: start the app, or open one of the ports its Ports panel lists` };
    }
    if (isWharfError(err)) {
      const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : 503;
      return { status, message: err.message };
    }
    return { status: 502, message: `${what} did not answer: ${(err as Error).message}` };
  }

  async function locate(form: PreviewForm): Promise<{ host: string; listed: boolean }> {
    const ports = await options.ports.current(form.workspace);
    const port = ports.find((p) => p.port === form.port);
    // Not listed yet may mean just opened: the agent, which checks afresh, has the last word.
    return { host: pickHost(port), listed: port !== undefined };
  }

  function agentFor(workspace: string, port: number, host: string): ChannelAgent {
    const key = `${workspace}\0${host}\0${port}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = new ChannelAgent(() => options.agent(workspace).then((c) => c.forwardOut(host, port)), options.maxIdleChannels);
      agents.set(key, agent);
    }
    return agent;
  }

  return {
    /** Answers `req` with the app's answer. */
    async serveHttp(req: IncomingMessage, res: ServerResponse, plan: ProxyRequest): Promise<void> {
      const { form } = plan;
      let located: { host: string; listed: boolean };
      try {
        located = await locate(form);
      } catch (err) {
        return answerError(res, describeFailure(err, form, false).status, describeFailure(err, form, false).message);
      }
      const upstream = httpRequest({
        agent: agentFor(form.workspace, form.port, located.host),
        method: req.method,
        path: plan.path,
        headers: buildUpstreamHeaders(req.headers, { form, dropAuthorization: plan.dropAuthorization, upgrade: false }),
      });
      upstream.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, buildDownstreamHeaders(answer.headers, form));
        copyOneWay(answer, res);
      });
      upstream.on('error', (err) => {
        const failure = describeFailure(err, form, located.listed);
        options.log('preview.upstream_error', { workspace: form.workspace, port: form.port, error: (err as Error).message });
        answerError(res, failure.status, failure.message);
      });
      // A browser that goes away mid-answer stops the app's answer too.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      copyOneWay(req, upstream);
    },

    /**
     * Passes a websocket handshake (Vite's and webpack's hot reload, the app's own sockets) to the
     * app as it came, then joins the two byte streams: the app's 101 (or refusal) goes back as it
     * sent it. Resolves with the socket pair's end.
     */
    async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, plan: ProxyRequest): Promise<void> {
      const { form } = plan;
      let channel: Duplex;
      let listed = false;
      try {
        const located = await locate(form);
        listed = located.listed;
        channel = await (await options.agent(form.workspace)).forwardOut(located.host, form.port);
      } catch (err) {
        const failure = describeFailure(err, form, listed);
        return refuseUpgrade(socket, failure.status, failure.message);
      }
      const headers = buildUpstreamHeaders(req.headers, { form, dropAuthorization: plan.dropAuthorization, upgrade: true });
      const lines = [`${req.method ?? 'GET'} ${plan.path} HTTP/1.1`];
      for (const [name, value] of Object.entries(headers)) {
        for (const v of Array.isArray(value) ? value : [value]) {
          if (v !== undefined && !/[\r\n]/.test(String(v))) lines.push(`${name}: ${v}`);
        }
      }
      channel.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) channel.write(head);
      await pipeDuplex(socket, channel);
    },

    /** Forgets the keep-alive channels of a workspace (its agent connection went away). */
    forget(workspace: string): void {
      for (const [key, agent] of agents) {
        if (key.startsWith(`${workspace}\0`)) {
          agent.destroy();
          agents.delete(key);
        }
      }
    },

    shutdown(): void {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}

export function assertPreviewPort(port: number | undefined, text: string): number {
  if (port === undefined) throw new WharfError('bad_request', `"${text}" is not a port: give a number from 1 to 65535`);
  return port;
}
