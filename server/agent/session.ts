import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Duplex } from 'node:stream';
import type { IPty } from 'node-pty';
import type ssh2 from 'ssh2';
import { repairChannelWindowing } from './channel-window-repair.ts';
import type { KeyGrant } from './key-store.ts';
import { DEFAULT_SFTP_LIMITS, serveSftp } from './sftp-server.ts';

export type ProcessEnvironment = {
  /** Workspace root: cwd of every process. */
  root: string;
  shell: string;
  /** Base environment for processes (PATH, HOME, LANG...), merged under client `env` requests. */
  env: Record<string, string>;
};

export type SubsystemContext = { grant: KeyGrant; env: Record<string, string> };

/** A wharf subsystem gets the raw channel; framing is up to the subsystem. */
export type SubsystemHandler = (stream: Duplex, context: SubsystemContext) => void;

type PtyInfo = { cols: number; rows: number; term: string };

const signalNames = Object.keys(osConstants.signals);

// node-pty is loaded with the first pty session, not at the agent's start: it maps its add-on and
// loads node's tty module, which an agent that only serves files, documents and forwards (most of
// them, most of the time) never needs. esbuild keeps a dynamic import of a bundled module lazy.
let ptyModule: Promise<typeof import('node-pty')> | undefined;
const loadPty = () => (ptyModule ??= import('node-pty').then((m) => m.default));

function exitWith(stream: ssh2.ServerChannel, code: number | null, signal: string | null): void {
  if (signal) stream.exit(signal.replace(/^SIG/, ''), false, '');
  else stream.exit(code ?? 0);
  stream.end();
}

/** Serves one SSH `session` channel: env, pty-req, window-change, signal, exec, shell, subsystems. */
export function serveSession(
  session: ssh2.Session,
  grant: KeyGrant,
  proc: ProcessEnvironment,
  subsystems: Map<string, SubsystemHandler>,
): void {
  const clientEnv: Record<string, string> = {};
  let ptyInfo: PtyInfo | undefined;
  let resize: ((cols: number, rows: number) => void) | undefined;
  let signal: ((name: string) => void) | undefined;

  session.on('env', (accept, _reject, info) => {
    clientEnv[info.key] = info.val;
    accept?.();
  });
  session.on('pty', (accept, _reject, info) => {
    ptyInfo = { cols: info.cols || 80, rows: info.rows || 24, term: info.term || 'xterm-256color' };
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (ptyInfo) {
      ptyInfo.cols = info.cols;
      ptyInfo.rows = info.rows;
    }
    resize?.(info.cols, info.rows);
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    const name = `SIG${info.name}`;
    if (!signal || !signalNames.includes(name)) return reject?.();
    signal(name);
    accept?.();
  });

  function runInPty(stream: ssh2.ServerChannel, child: IPty): void {
    resize = (cols, rows) => child.resize(Math.max(1, cols), Math.max(1, rows));
    signal = (name) => child.kill(name);
    child.onData((data) => stream.write(data));
    stream.on('data', (data: Buffer) => child.write(data));
    child.onExit(({ exitCode, signal: sig }) => {
      const name = sig ? signalNames.find((n) => osConstants.signals[n as keyof typeof osConstants.signals] === sig) ?? null : null;
      exitWith(stream, exitCode, name);
    });
    stream.on('close', () => child.kill('SIGHUP'));
  }

  function run(stream: ssh2.ServerChannel, args: string[]): void {
    const env = { ...proc.env, ...clientEnv };
    if (ptyInfo) {
      const info = ptyInfo;
      env.TERM = info.term;
      loadPty()
        .then((pty) => {
          // The channel may have closed while node-pty loaded; its input waits, paused, meanwhile.
          if (!stream.destroyed) runInPty(stream, pty.spawn(proc.shell, args, { cols: info.cols, rows: info.rows, cwd: proc.root, env, name: info.term }));
        })
        .catch((err: Error) => {
          stream.stderr.write(`wharf: cannot start ${proc.shell}: ${err.message}\n`);
          exitWith(stream, 127, null);
        });
      return;
    }

    const child = spawn(proc.shell, args, { cwd: proc.root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    repairChannelWindowing(stream);
    signal = (name) => child.kill(name as NodeJS.Signals);
    child.stdout.pipe(stream, { end: false });
    child.stderr.pipe(stream.stderr, { end: false });
    stream.pipe(child.stdin);
    child.stdin.on('error', () => {});
    let outputDone = 0;
    let exit: [number | null, string | null] | undefined;
    const finish = () => {
      if (exit && outputDone === 2) exitWith(stream, exit[0], exit[1]);
    };
    child.stdout.on('end', () => { outputDone++; finish(); });
    child.stderr.on('end', () => { outputDone++; finish(); });
    child.on('exit', (code, sig) => { exit = [code, sig]; finish(); });
    child.on('error', (err) => {
      stream.stderr.write(`wharf: cannot start ${proc.shell}: ${err.message}\n`);
      exitWith(stream, 127, null);
    });
    stream.on('close', () => { if (!exit) child.kill('SIGHUP'); });
  }

  session.on('exec', (accept, _reject, info) => {
    const stream = accept();
    run(stream, ['-c', info.command]);
  });
  session.on('shell', (accept) => {
    const stream = accept();
    run(stream, ['-l']);
  });
  // Standard file access, rooted at the workspace (what OpenSSH's `sftp` and IDEs speak).
  // The control server (the admin key) reads a listing's attributes, never its `ls -l` lines.
  session.on('sftp', (accept) => serveSftp(accept(), proc.root, DEFAULT_SFTP_LIMITS, { longnames: grant.role !== 'admin' }));
  session.on('subsystem', (accept, reject, info) => {
    const handler = subsystems.get(info.name);
    if (!handler) return reject();
    const stream = accept();
    handler(stream, { grant, env: { ...clientEnv } });
  });
}
