import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';
import { createSshKey, loginWharf, runProgram, userEnv, WHARF } from './support/wharf-cli.ts';

describe('plain OpenSSH sftp against the workspace agent', () => {
  let server: TestServer;
  let dir: string;
  let sftpArgs: string[];
  /** OpenSSH's sftp in batch mode, the commands on its stdin, run from the user's HOME. */
  const sftp = (commands: string[]) => runProgram('sftp', sftpArgs, { cwd: dir, env: userEnv(dir), input: commands.join('\n') + '\n' });

  beforeAll(async () => {
    server = await startTestServer();
    const workspace = await createWorkspace(server, 'sftp1');
    dir = await server.tempDir('wharf-openssh-');
    await loginWharf(server, dir);
    const key = await createSshKey(join(dir, 'id'), 'openssh-sftp-test');
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
  afterAll(() => server?.dispose());

  it('lists a directory, uploads and downloads a file', async () => {
    const upload = randomBytes(1024 * 1024 + 123);
    await writeFile(join(dir, 'upload.bin'), upload);
    const result = await sftp(['pwd', 'ls -l /src', 'put upload.bin /src/upload.bin', 'get /src/hello.txt hello.txt', 'ls /src', 'cd ..', 'pwd']);
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
    const result = await sftp(['mkdir /made', 'put note.txt /made/a.txt', 'rename /made/a.txt /made/b.txt', 'ls /made', '-get /escape/passwd stolen', '-cd /escape', 'rm /made/b.txt', 'rmdir /made', '-ls /made']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/\/made\/b\.txt/);
    // OpenSSH globs before a get, so the refused lookup reads as "not found"; cd shows the agent's reason.
    expect(result.stderr).toMatch(/File "\/escape\/passwd" not found/);
    expect(result.stderr).toMatch(/realpath \/escape: EACCES: path resolves outside the workspace/);
    expect(result.stderr).toMatch(/Can't ls: "\/made" not found/);
    await expect(readFile(join(dir, 'stolen'))).rejects.toThrow(/ENOENT/);
  });
});
