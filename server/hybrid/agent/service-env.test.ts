import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { findServiceProcess, parseEnviron } from './service-env.ts';

const started: ChildProcess[] = [];

/** A real process (so a real /proc/<pid>/environ) started with exactly `env`. */
async function startWith(env: Record<string, string>): Promise<number> {
  const child = spawn('sleep', ['60'], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: 'ignore' });
  started.push(child);
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child.pid as number;
}

afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

describe('the service process of a workspace', () => {
  const root = `/tmp/wharf-service-env-${process.pid}`;

  it('is the newest process of this workspace carrying WHARF_SERVICE=<name>, its environment read from /proc without shell bookkeeping', async () => {
    await startWith({ WHARF_SERVICE: 'api', WHARF_WORKSPACE: root, GENERATION: 'older' });
    // Ticks of /proc/<pid>/stat count hundredths of a second: the newer one must be later.
    await new Promise((r) => setTimeout(r, 50));
    const newest = await startWith({ WHARF_SERVICE: 'api', WHARF_WORKSPACE: root, GENERATION: 'newer', PWD: '/somewhere', SHLVL: '2', _: '/usr/bin/sleep' });
    await startWith({ WHARF_SERVICE: 'api', WHARF_WORKSPACE: `${root}-other`, GENERATION: 'another workspace' });
    await startWith({ WHARF_SERVICE: 'web', WHARF_WORKSPACE: root, GENERATION: 'another service' });
    await new Promise((r) => setTimeout(r, 50));

    const found = await findServiceProcess('api', { root, env: {} });
    expect(found?.process).toMatchObject({ pid: newest, command: 'sleep 60', matches: 2 });
    expect(found?.environment).toEqual({ PATH: '/usr/bin:/bin', WHARF_SERVICE: 'api', WHARF_WORKSPACE: root, GENERATION: 'newer' });
    expect(await findServiceProcess('worker', { root, env: {} })).toBeUndefined();
  });

  it('parses an environ file: NUL-separated NAME=value, "=" allowed in values', () => {
    expect(parseEnviron(Buffer.from('A=1\0B=x=y\0\0junk\0C=\0'))).toEqual({ A: '1', B: 'x=y', C: '' });
  });
});
