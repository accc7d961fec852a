import { posix } from 'node:path';
import type ssh2 from 'ssh2';
import { sshThroughServer, type TestServer } from './server.ts';

/** A path quoted for the workspace's shell. */
export const shq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** One file of a workspace (see `WorkspaceFs.at`). */
export type WorkspaceFile = { fs: WorkspaceFs; path: string };

export type ShResult = { code: number | null; signal?: string; stdout: Buffer; stderr: string };

/**
 * A workspace's files as a user sees them, whatever the driver: read through the files API,
 * written and inspected by programs run in the workspace over SSH (the agent's own shell, in the
 * workspace's root folder). Nothing here touches the server's data dir, so a test written with it
 * runs the same on the process driver and the docker driver.
 *
 * Writes are made by `cat > path` in the workspace: the file is truncated and written in place, as
 * a program (an editor, `>` in a terminal) does, not replaced the way the files API does.
 */
export class WorkspaceFs {
  private client: Promise<ssh2.Client> | undefined;

  constructor(
    private readonly server: TestServer,
    readonly workspace: string,
  ) {}

  /** The SSH connection of this helper, made again when the last one went (a stopped workspace, say). */
  private connection(): Promise<ssh2.Client> {
    if (!this.client) {
      const made = sshThroughServer(this.server, this.workspace);
      this.client = made;
      made.then(
        (c) => {
          const forget = () => {
            if (this.client === made) this.client = undefined;
          };
          c.on('close', forget);
          c.on('end', forget);
          c.on('error', forget);
        },
        () => {
          if (this.client === made) this.client = undefined;
        },
      );
    }
    return this.client;
  }

  /**
   * Runs `command` in the workspace (its shell, in its root folder), with `stdin` given to it,
   * whatever its exit. When the connection goes before the command reported an exit (a stopped
   * workspace), it is run once more on a new connection, saying so.
   */
  async run(command: string, stdin?: Buffer | string): Promise<ShResult> {
    const first = await (await this.start(command))(stdin);
    if (first.code !== null || first.signal !== undefined) return first;
    console.warn(`[workspace-fs] ${this.workspace}: the SSH connection went before ${JSON.stringify(command)} reported an exit; running it again on a new one`);
    this.close();
    return (await this.start(command))(stdin);
  }

  /**
   * Starts `command` in the workspace and hands back what feeds its stdin (then ends it) and waits
   * for its end: a test can have the program ready and time its input to the millisecond.
   */
  async start(command: string): Promise<(stdin?: Buffer | string) => Promise<ShResult>> {
    const client = await this.connection();
    const stdout: Buffer[] = [];
    let stderr = '';
    let code: number | null = null;
    let signal: string | undefined;
    let closed!: Promise<void>;
    // Listeners go on in exec's callback itself, not after an await: ssh2 parses a whole chunk at
    // once, and a quick command's exit-status often comes in the same chunk as the exec's answer,
    // so a listener added a microtask later missed the 'exit' (the command looked cut short).
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.exec(command, (err, ch) => {
        if (err) return reject(err);
        ch.on('data', (d: Buffer) => stdout.push(d));
        ch.stderr.on('data', (d: Buffer) => (stderr += d));
        ch.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s;
        });
        closed = new Promise<void>((done) => ch.on('close', () => done()));
        resolve(ch);
      }),
    );
    return async (stdin) => {
      channel.end(stdin === undefined ? undefined : stdin);
      await closed;
      return { code, signal, stdout: Buffer.concat(stdout), stderr };
    };
  }

  /** Runs `command` in the workspace and gives its stdout; a failure is an error with its stderr. */
  async sh(command: string, stdin?: Buffer | string): Promise<string> {
    const res = await this.run(command, stdin);
    if (res.code !== 0) throw new Error(`in workspace ${this.workspace}: ${command}: exit ${res.code ?? res.signal}: ${res.stderr}`);
    return res.stdout.toString('utf8');
  }

  /** `path` in this workspace, for helpers that read it (expectEverywhere). */
  at(path: string): WorkspaceFile {
    return { fs: this, path };
  }

  /** The bytes of a file, through the files API; a missing one rejects with an error whose code is ENOENT. */
  async read(path: string): Promise<Buffer> {
    const res = await this.server.api(`/api/workspaces/${this.workspace}/files/${path.split('/').map(encodeURIComponent).join('/')}`);
    if (res.status === 404) throw Object.assign(new Error(`ENOENT: ${path} is not in workspace ${this.workspace}`), { code: 'ENOENT' });
    if (res.status !== 200) throw new Error(`read ${path}: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async readText(path: string): Promise<string> {
    return (await this.read(path)).toString('utf8');
  }

  /** Writes a file in place from a program in the workspace, making its folder first. */
  async write(path: string, content: Buffer | string): Promise<void> {
    const res = await this.run(`mkdir -p ${shq(posix.dirname(path))} && cat > ${shq(path)}`, content);
    if (res.code !== 0) throw new Error(`write ${path}: exit ${res.code}: ${res.stderr}`);
  }

  /**
   * A write prepared ahead: the program that writes is running and waiting when this resolves, and
   * the returned function makes it write `content` at once (nothing touches the file before that).
   */
  async prepareWrite(path: string): Promise<(content: Buffer | string) => Promise<void>> {
    // `read` takes the first line only (a shell reads a pipe byte by byte), then cat writes the rest.
    const start = await this.start(`IFS= read -r _go && exec cat > ${shq(path)}`);
    return async (content) => {
      const res = await start(Buffer.concat([Buffer.from('go\n'), Buffer.from(content)]));
      if (res.code !== 0) throw new Error(`write ${path}: exit ${res.code}: ${res.stderr}`);
    };
  }

  /** Whether anything (a dangling link included) is at `path` in the workspace. */
  async exists(path: string): Promise<boolean> {
    return (await this.sh(`if test -e ${shq(path)} || test -L ${shq(path)}; then echo yes; else echo no; fi`)) === 'yes\n';
  }

  /** Permission bits and inode number of `path` (not following a last symlink unless `follow`). */
  async stat(path: string, options: { follow?: boolean } = {}): Promise<{ mode: number; ino: number; uid: number }> {
    const [mode, ino, uid] = (await this.sh(`stat ${options.follow === false ? '' : '-L '}-c '%a %i %u' ${shq(path)}`)).trim().split(' ');
    return { mode: Number.parseInt(mode, 8), ino: Number(ino), uid: Number(uid) };
  }

  async readlink(path: string): Promise<string> {
    return (await this.sh(`readlink ${shq(path)}`)).replace(/\n$/, '');
  }

  /** The workspace's root folder as its programs see it (where `run` starts). */
  async root(): Promise<string> {
    return (await this.sh('pwd -P')).trim();
  }

  /** Ends the SSH connection, if there is one. */
  close(): void {
    const client = this.client;
    this.client = undefined;
    void client?.then((c) => c.end(), () => {});
  }
}

/** A workspace's root folder as its own programs name it (`pwd`, whatever the driver): where shells, terminals and local deploys start. */
export async function workspaceRoot(server: TestServer, workspace: string): Promise<string> {
  const files = new WorkspaceFs(server, workspace);
  try {
    return (await files.sh('pwd')).trim();
  } finally {
    files.close();
  }
}
