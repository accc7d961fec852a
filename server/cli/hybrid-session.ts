import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type ssh2 from 'ssh2';
import { generateKeyPair, pipeDuplex } from '../common/index.ts';
import { grantOfRules, type ForwardRule, type HybridRules, type ReverseRule } from '../hybrid/index.ts';
import { findPortHolder } from './port-holder.ts';
import type { ApiClient, CliFailure } from './types.ts';
import { connectSsh, describeClose, findWorkspace } from './workspace-tunnel.ts';

export type HybridTiming = {
  readyTimeoutMs: number;
  /** Keepalive interval and how many may go unanswered: a dead link is noticed within their product. */
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  keyTtlSeconds: number;
  /** Reconnect back-off: the first wait, doubled after each failure up to `maxMs`. */
  backoff: { initialMs: number; maxMs: number };
  /** Time the local process group gets after SIGTERM before SIGKILL. */
  killGraceMs: number;
};

export type HybridSessionOptions = {
  api: ApiClient;
  workspaceId: string;
  /** `dev.<name>` of the manifest, for messages and the key's label. */
  name: string;
  rules: HybridRules;
  /** Where forward rules listen and reverse rules dial on this machine. */
  interface: string;
  /** The service's local command, run once in its own process group; the session ends with it. */
  command?: { argv: string[]; cwd: string; env: Record<string, string> };
  /** Status lines (one per rule change) and the summary. */
  report: (line: string) => void;
  timing: HybridTiming;
  /** Aborted on Ctrl-C / SIGTERM: the local process group is stopped and the session ends. */
  signal: AbortSignal;
};

/** `failing`: the last connection of the rule failed, so its next failure is not reported again. */
type RuleStats = { connections: number; failures: number; failing?: boolean };

/** Exit code of the local command like a shell's: its status, or 128+n for a signal. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * How long a reconnected link keeps asking for a reverse port the agent refuses: the previous
 * link's connection may hold it until the agent has closed that connection.
 */
const REVERSE_RETRY_MS = 5_000;
const REVERSE_RETRY_EVERY_MS = 200;
/** How long an ending session waits for its key's revocation before exiting anyway. */
const REVOKE_ON_EXIT_MS = 3_000;

const describeForward = (r: ForwardRule, iface: string) => `forward ${iface}:${r.localPort} → ${r.host}:${r.remotePort}`;
const describeReverse = (r: ReverseRule, iface: string) => `reverse workspace:${r.remotePort} → ${iface}:${r.localPort}`;

/**
 * One `wharf up` session: the forward rules listen here for the whole session; the SSH link to
 * the agent (a throw-away key granted exactly the rules' targets and ports) is made again with
 * back-off whenever it is lost, and the reverse rules are asked for again on each new link. The
 * local command is started once and keeps its pid across reconnects (where the Okteto CLI
 * restarts it). Ends with the command's exit code, or 1 when the workspace goes away.
 */
export async function runHybridSession(options: HybridSessionOptions): Promise<number> {
  const { api, rules, report, timing, signal } = options;
  const iface = options.interface;
  const stats = new Map<string, RuleStats>();
  const statOf = (label: string) => {
    let s = stats.get(label);
    if (!s) stats.set(label, (s = { connections: 0, failures: 0 }));
    return s;
  };
  const started = Date.now();
  let client: ssh2.Client | undefined;
  /** Links made so far: every one after the first is a reconnect. */
  let links = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  // Forward listeners first: a port in use is reported before anything is started.
  const listeners: Server[] = [];
  const closeListeners = () => {
    for (const l of listeners) l.close();
  };
  for (const rule of rules.forward) {
    const label = describeForward(rule, iface);
    const listener = createServer({ allowHalfOpen: true }, (socket) => {
      socket.setNoDelay(true);
      socket.on('error', () => {});
      track(socket);
      const link = client;
      if (!link) {
        statOf(label).failures += 1;
        socket.destroy();
        return;
      }
      const opened = (err: Error | undefined, channel: ssh2.ClientChannel) => {
        const stat = statOf(label);
        if (err) {
          stat.failures += 1;
          // Once per run of failures: a client retrying every 100 ms must not flood the terminal.
          if (!stat.failing) report(`${label}: the workspace could not reach ${rule.host}:${rule.remotePort} (${err.message.replace(/: $/, '') || 'refused'}); is it listening there?`);
          stat.failing = true;
          socket.destroy();
          return;
        }
        if (stat.failing) report(`${label}: connected again`);
        stat.failing = false;
        stat.connections += 1;
        void pipeDuplex(channel, socket);
      };
      try {
        link.forwardOut(socket.remoteAddress ?? '127.0.0.1', socket.remotePort ?? 0, rule.host, rule.remotePort, opened);
      } catch (err) {
        // ssh2 throws (not calls back) when the link went down before its 'close' came.
        statOf(label).failures += 1;
        socket.destroy();
      }
    });
    const bound = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      listener.once('error', resolve);
      listener.listen(rule.localPort, iface, () => resolve(undefined));
    });
    if (bound) {
      closeListeners();
      const holder = bound.code === 'EADDRINUSE' ? await findPortHolder(rule.localPort) : undefined;
      const why = bound.code === 'EADDRINUSE' ? `port ${rule.localPort} is already in use${holder ? ` by pid ${holder.pid} (${holder.command})` : ''}` : bound.message;
      report(`${label}: failed: ${why}`);
      return 1;
    }
    listener.on('error', () => {});
    listeners.push(listener);
    report(`${label}: listening`);
  }

  let child: ChildProcess | undefined;
  let childExit: Promise<number> | undefined;
  let finished: { code: number; why: string } | undefined;
  const finish = (code: number, why: string) => {
    finished ??= { code, why };
  };
  const ended = new AbortController();
  const onAbort = () => {
    finish(130, 'stopped');
    ended.abort();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  function startCommand(): void {
    if (!options.command || child) return;
    const { argv, cwd, env } = options.command;
    // Its own process group, so stopping it stops everything it started (no orphan keeps a port).
    child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: 'inherit', detached: true });
    const proc = child;
    childExit = new Promise((resolve) => {
      proc.once('error', (err) => {
        report(`${options.name}: could not start ${JSON.stringify(argv.join(' '))}: ${err.message}`);
        resolve(127);
      });
      proc.once('exit', (code, sig) => resolve(exitCodeOf(code, sig)));
    });
    void childExit.then((code) => {
      finish(code, `the local command exited with ${code}`);
      ended.abort();
    });
    report(`${options.name}: started ${argv.join(' ')} (pid ${proc.pid})`);
  }

  async function stopCommand(): Promise<void> {
    if (!child?.pid || !childExit || child.exitCode !== null || child.signalCode !== null) return;
    const group = -child.pid;
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(group, sig);
      } catch {
        // already gone
      }
    };
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), timing.killGraceMs);
    await childExit;
    clearTimeout(timer);
    // Whatever the command left in its group goes too.
    kill('SIGKILL');
  }

  const keysPath = `/api/workspaces/${encodeURIComponent(options.workspaceId)}/session-keys`;
  /**
   * Keys of earlier links not revoked yet. A link lost with the network loses its revocation
   * too, and until the agent hears of it the old connection keeps holding the reverse ports; so
   * each new link first revokes these (the agent then closes that connection and frees them).
   */
  const staleKeys = new Set<string>();
  async function revokeKey(id: string): Promise<void> {
    const res = await api.request('DELETE', `${keysPath}/${id}`).catch(() => undefined);
    if (res && (res.ok || res.error.code === 'not_found')) staleKeys.delete(id);
  }
  function retireKey(id: string): void {
    staleKeys.add(id);
    void revokeKey(id);
  }

  /** Asks the agent to listen on `port`; on a reconnect a refusal is asked again for a while (REVERSE_RETRY_MS). */
  async function askReverse(ssh: ssh2.Client, port: number, again: boolean, closed: () => boolean): Promise<Error | undefined> {
    const deadline = Date.now() + (again ? REVERSE_RETRY_MS : 0);
    for (;;) {
      const err = await new Promise<Error | undefined>((resolve) => ssh.forwardIn('127.0.0.1', port, (e) => resolve(e ?? undefined)));
      if (!err || Date.now() >= deadline || closed() || ended.signal.aborted) return err;
      await delay(REVERSE_RETRY_EVERY_MS, ended.signal);
    }
  }

  /** One SSH link: resolves when it is lost (or the session ends). */
  type LinkEnd = { connected: boolean; gone?: CliFailure; why?: string };
  async function runLink(): Promise<LinkEnd> {
    const workspace = await findWorkspace(api, options.workspaceId);
    if (!workspace.ok) return { connected: false, gone: workspace.error.code === 'not_found' ? workspace.error : undefined, why: workspace.error.message };
    if (workspace.value.status === 'stopped') {
      return { connected: false, gone: { code: 'conflict', message: `workspace "${options.workspaceId}" is stopped` } };
    }
    await Promise.all([...staleKeys].map(revokeKey));
    const key = generateKeyPair(`wharf-up-${options.name}`);
    const grant = grantOfRules(rules);
    const registered = await api.json<{ id: string }>('POST', keysPath, {
      json: { publicKey: key.publicKey, ttlSeconds: timing.keyTtlSeconds, label: `wharf up ${options.name}`, ...grant },
    });
    if (!registered.ok) return { connected: false, gone: registered.error.code === 'not_found' ? registered.error : undefined, why: registered.error.message };
    const revoke = () => retireKey(registered.value.id);
    const socket = await api.openWebSocket(`/api/workspaces/${encodeURIComponent(options.workspaceId)}/ssh`, { unmasked: true });
    if (!socket.ok) {
      revoke();
      return { connected: false, why: socket.error.message };
    }
    let closedWhy: string | undefined;
    socket.value.once('close', (code, reason) => (closedWhy = describeClose(code, reason.toString())));
    const link = await connectSsh(socket.value, workspace.value, key.privateKey, timing);
    if (!link.ok) {
      revoke();
      return { connected: false, why: link.error.message };
    }
    const ssh = link.value;
    // The key only had to let this link in; it is revoked when the link ends.
    // ws's stream under the SSH client never emits 'close' (createWebSocketStream sets
    // emitClose: false), so ssh2's own 'close' may not come: the websocket's close (which a
    // keepalive timeout also causes, by destroying the stream) ends the link as well.
    let closed = false;
    const lost = new Promise<void>((resolve) => {
      ssh.once('close', () => resolve());
      socket.value.once('close', () => resolve());
    }).then(() => {
      closed = true;
    });
    // ssh2's reason, e.g. "Keepalive timeout" when the network stopped answering.
    let failure: string | undefined;
    ssh.on('error', (err) => (failure ??= err.message));
    // From its 'end' on, a link takes no new channels: forward connections wait for the next one.
    ssh.once('end', () => {
      if (client === ssh) client = undefined;
    });
    ssh.on('tcp connection', (info, accept, reject) => {
      const rule = rules.reverse.find((r) => r.remotePort === info.destPort);
      if (!rule) return reject();
      const label = describeReverse(rule, iface);
      const local = connect({ host: iface, port: rule.localPort, allowHalfOpen: true });
      local.setNoDelay(true);
      track(local);
      let opened = false;
      const stat = statOf(label);
      local.once('error', (err) => {
        if (opened) return;
        stat.failures += 1;
        if (!stat.failing) report(`${label}: nothing answers on ${iface}:${rule.localPort} (${err.message}); is the local service running?`);
        stat.failing = true;
        reject();
      });
      local.once('connect', () => {
        opened = true;
        if (stat.failing) report(`${label}: connected again`);
        stat.failing = false;
        stat.connections += 1;
        void pipeDuplex(accept(), local);
      });
    });
    let refused = 0;
    for (const rule of rules.reverse) {
      const label = describeReverse(rule, iface);
      const err = await askReverse(ssh, rule.remotePort, links > 0, () => closed);
      if (err) refused += 1;
      report(err ? `${label}: failed: the workspace refused the port (${err.message || 'in use or not granted'})` : `${label}: listening`);
    }
    client = ssh;
    links += 1;
    const back = refused ? `${refused} reverse rule${refused === 1 ? '' : 's'} could not listen again` : 'every rule is back';
    report(links > 1 ? `${options.name}: connected again; ${back}` : `${options.name}: connected to workspace "${options.workspaceId}"`);
    startCommand();
    const stop = () => ssh.end();
    ended.signal.addEventListener('abort', stop, { once: true });
    await lost;
    ended.signal.removeEventListener('abort', stop);
    client = undefined;
    ssh.end();
    revoke();
    const why = [failure, closedWhy].filter(Boolean).join('; ');
    if (!ended.signal.aborted) report(`${options.name}: connection lost${why ? ` (${why})` : ''}; reconnecting`);
    return { connected: true };
  }

  let wait = timing.backoff.initialMs;
  while (!ended.signal.aborted) {
    const link = await runLink().catch((err: Error): LinkEnd => ({ connected: false, why: err.message }));
    if (link.gone) {
      report(`${options.name}: ${link.gone.code === 'not_found' ? `workspace "${options.workspaceId}" was deleted` : link.gone.message}; stopping`);
      finish(1, link.gone.message);
      break;
    }
    if (ended.signal.aborted) break;
    if (link.connected) wait = timing.backoff.initialMs;
    else report(`${options.name}: could not connect (${link.why ?? 'unknown reason'}); trying again in ${(wait / 1000).toFixed(1)}s`);
    await delay(wait, ended.signal);
    wait = Math.min(wait * 2, timing.backoff.maxMs);
  }

  signal.removeEventListener('abort', onAbort);
  await stopCommand();
  client?.end();
  // The last link's key is revoked before exiting, so the session leaves the workspace's list at
  // once rather than when the key expires; bounded, since a server that is down cannot answer.
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all([...staleKeys].map(revokeKey)), new Promise((r) => (bound = setTimeout(r, REVOKE_ON_EXIT_MS)))]).catch(() => {});
  clearTimeout(bound);
  closeListeners();
  for (const s of sockets) s.destroy();
  const seconds = Math.round((Date.now() - started) / 1000);
  const reconnects = Math.max(0, links - 1);
  const lines = [...stats.entries()].map(([label, s]) => `${label}: ${s.connections} connection${s.connections === 1 ? '' : 's'}${s.failures ? `, ${s.failures} failed` : ''}`);
  report(`${options.name}: ${finished?.why ?? 'stopped'} after ${seconds}s; reconnected ${reconnects} time${reconnects === 1 ? '' : 's'}${lines.length ? `\n  ${lines.join('\n  ')}` : ''}`);
  return finished?.code ?? 0;
}
