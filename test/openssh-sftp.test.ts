import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';

const WHARF = resolve(import.meta.dirname, '..', 'bin', 'wharf.js');

function run(command: string, args: string[], input: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('plain OpenSSH sftp against the workspace agent', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  let sftpArgs: string[];

  beforeAll(async () => {
    server = await startTestServer();
    const workspace = await createWorkspace(server, 'sftp1');
    dir = await mkdtemp(join(tmpdir(), 'wharf-openssh-'));
    env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') };
    const login = await run(process.execPath, [WHARF, 'login', server.url, '--token', server.token], '', dir, env);
    expect(login.code, login.stderr).toBe(0);
    const key = join(dir, 'id');
    await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'openssh-sftp-test', '-f', key]);
    // Pin the agent's host key: the client checks it end to end, through the server's tunnel.
    await writeFile(join(dir, 'known_hosts'), `wharf-sftp1 ${workspace.hostKey}\n`);
    sftpArgs = [
      '-b', '-',
      '-F', '/dev/null',
      // The user's path: `wharf proxy` registers the key's public half and pipes the tunnel.
      '-o', `ProxyCommand=${process.execPath} ${WHARF} proxy sftp1 --identity ${key}.pub`,
      '-o', 'HostKeyAlias=wharf-sftp1',
      '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'BatchMode=yes',
      '-i', key,
      'wharf@sftp1',
    ];
    const client = await sshThroughServer(server, 'sftp1');
    const seeded = await execOver(client, 'mkdir -p src && printf "hello from the workspace\\n" > src/hello.txt && ln -s /etc escape');
    expect(seeded.code).toBe(0);
    client.end();
  });
  afterAll(async () => {
    await server?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists a directory, uploads and downloads a file', async () => {
    const upload = randomBytes(1024 * 1024 + 123);
    await writeFile(join(dir, 'upload.bin'), upload);
    const result = await run('sftp', sftpArgs, ['pwd', 'ls -l /src', 'put upload.bin /src/upload.bin', 'get /src/hello.txt hello.txt', 'ls /src', 'cd ..', 'pwd'].join('\n') + '\n', dir, env);
    expect(result.stderr).not.toMatch(/denied|error|failed/i);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Remote working directory: \/\n/);
    expect(result.stdout).toMatch(/-rw\S*\s+1 .*\s25 .* hello\.txt/);
    expect(result.stdout).toMatch(/\/src\/upload\.bin\s/);
    expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe('hello from the workspace\n');
    // The upload landed in the workspace byte for byte: check it from a shell inside.
    const client = await sshThroughServer(server, 'sftp1');
    const sum = await execOver(client, 'sha256sum src/upload.bin');
    client.end();
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(upload).digest('hex'));
  });

  it('makes, renames and removes, and refuses a symlink that leads out of the workspace', async () => {
    await writeFile(join(dir, 'note.txt'), 'a note\n');
    const result = await run(
      'sftp',
      sftpArgs,
      ['mkdir /made', 'put note.txt /made/a.txt', 'rename /made/a.txt /made/b.txt', 'ls /made', '-get /escape/passwd stolen', '-cd /escape', 'rm /made/b.txt', 'rmdir /made', '-ls /made'].join('\n') + '\n',
      dir,
      env,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\/made\/b\.txt/);
    // OpenSSH globs before a get, so the refused lookup reads as "not found"; cd shows the agent's reason.
    expect(result.stderr).toMatch(/File "\/escape\/passwd" not found/);
    expect(result.stderr).toMatch(/realpath \/escape: EACCES: path resolves outside the workspace/);
    expect(result.stderr).toMatch(/Can't ls: "\/made" not found/);
    await expect(readFile(join(dir, 'stolen'))).rejects.toThrow(/ENOENT/);
  });
});
