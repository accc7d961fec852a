import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, type TestServer } from './support/server.ts';
import { workspaceRoot } from './support/workspace-fs.ts';
import { createSshKey, loginWharf, runProgram, startServerAndHome, userEnv, WHARF } from './support/wharf-cli.ts';

/**
 * Plain OpenSSH with wharf as its ProxyCommand; no ssh_config, no agent, only the given key.
 * Host keys are not checked unless a known_hosts file is given (OpenSSH keeps the first value
 * of an option, so the two modes must not both be on the command line).
 */
function opensshArgs(proxy: string, key: string, knownHosts?: string): string[] {
  return [
    '-F', '/dev/null',
    '-o', `ProxyCommand=${proxy}`,
    '-i', key,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', `StrictHostKeyChecking=${knownHosts ? 'yes' : 'no'}`,
    '-o', `UserKnownHostsFile=${knownHosts ?? '/dev/null'}`,
    '-o', 'LogLevel=ERROR',
  ];
}

describe('plain OpenSSH through "wharf proxy"', () => {
  let server: TestServer;
  let home: string;
  let key: string;
  /** `ssh` as the user runs it, from their HOME. */
  const ssh = (args: string[]) => runProgram('ssh', args, { cwd: home, env: userEnv(home) });

  beforeAll(async () => {
    ({ server, home } = await startServerAndHome('ws1', 'wharf-openssh-'));
    await loginWharf(server, home);
    key = await createSshKey(join(home, 'key'), 'openssh-test');
  });
  afterAll(() => server.dispose());

  it('runs a command and returns its exit status', async () => {
    const proxy = `node ${WHARF} proxy ws1 --identity ${key}.pub`;
    const hello = await ssh([...opensshArgs(proxy, key), 'wharf@ws1', 'echo hello']);
    expect(hello.stderr).toBe('');
    expect(hello).toMatchObject({ code: 0, stdout: 'hello\n' });
    const four = await ssh([...opensshArgs(proxy, key), 'wharf@ws1', 'exit 4']);
    expect(four.code).toBe(4);
  });

  it('uses ~/.ssh/id_ed25519.pub by default and %h as the workspace', async () => {
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await writeFile(join(home, '.ssh', 'id_ed25519.pub'), await readFile(`${key}.pub`));
    const res = await ssh([...opensshArgs(`node ${WHARF} proxy %h`, key), 'wharf@ws1', 'pwd']);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe(`${await workspaceRoot(server, 'ws1')}\n`);
  });

  it('works from a "Host *.wharf" block in an ssh_config file', async () => {
    const config = join(home, 'ssh_config');
    await writeFile(
      config,
      [
        'Host *.wharf',
        '    User wharf',
        `    ProxyCommand node ${WHARF} proxy %h --identity ${key}.pub`,
        `    IdentityFile ${key}`,
        '    IdentitiesOnly yes',
        '    BatchMode yes',
        '    StrictHostKeyChecking no',
        '    UserKnownHostsFile /dev/null',
        '    LogLevel ERROR',
        '',
      ].join('\n'),
    );
    const res = await ssh(['-F', config, 'ws1.wharf', 'echo "from $PWD"']);
    expect(res).toMatchObject({ code: 0, stdout: `from ${await workspaceRoot(server, 'ws1')}\n`, stderr: '' });
  });

  it('verifies the agent against the host key the API reports', async () => {
    const workspace = (await (await server.api('/api/workspaces/ws1')).json()) as { hostKey: string };
    const knownHosts = join(home, 'known_hosts');
    await writeFile(knownHosts, `ws1 ${workspace.hostKey}\n`);
    const proxy = `node ${WHARF} proxy ws1 --identity ${key}.pub`;
    const ok = await ssh([...opensshArgs(proxy, key, knownHosts), 'ws1', 'echo pinned']);
    expect(ok).toMatchObject({ code: 0, stdout: 'pinned\n' });

    await createWorkspace(server, 'ws2');
    const other = (await (await server.api('/api/workspaces/ws2')).json()) as { hostKey: string };
    await writeFile(knownHosts, `ws1 ${other.hostKey}\n`);
    const mismatch = await ssh([...opensshArgs(proxy, key, knownHosts), 'ws1', 'echo never']);
    expect(other.hostKey).not.toBe(workspace.hostKey);
    expect(mismatch, JSON.stringify(mismatch)).toMatchObject({ code: 255 });
    expect(mismatch.stdout).toBe('');
    expect(mismatch.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('refuses a key other than the one the proxy registered', async () => {
    const stranger = join(home, 'stranger');
    await createSshKey(stranger);
    const proxy = `node ${WHARF} proxy ws1 --identity ${key}.pub`;
    const res = await ssh([...opensshArgs(proxy, stranger), 'wharf@ws1', 'echo never']);
    expect(res.code).toBe(255);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('shows the helper\'s reason when the workspace does not exist', async () => {
    const proxy = `node ${WHARF} proxy nope --identity ${key}.pub`;
    const res = await ssh([...opensshArgs(proxy, key), 'wharf@nope', 'echo never']);
    expect(res.code).toBe(255);
    expect(res.stderr).toMatch(/wharf: no workspace "nope"/);
  });
});
