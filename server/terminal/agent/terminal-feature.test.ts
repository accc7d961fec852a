import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planLaunch } from './terminal-feature.ts';

describe('terminal launch plans', () => {
  let root: string;
  let outside: string;
  const env = { PATH: '/usr/bin:/bin', HOME: '/home/x' };
  beforeAll(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'wharf-plan-')));
    outside = await realpath(await mkdtemp(join(tmpdir(), 'wharf-outside-')));
    await mkdir(join(root, 'src', 'app'), { recursive: true });
    await symlink(outside, join(root, 'escape'));
    await symlink(join(root, 'src'), join(root, 'inside-link'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('defaults to a login shell at the workspace root, 80x24', () => {
    const plan = planLaunch({}, { root, shell: '/bin/sh', env });
    expect(plan).toMatchObject({ ok: true, value: { file: '/bin/sh', args: ['-l'], cwd: root, cwdLabel: '.', cols: 80, rows: 24 } });
  });

  it('confines cwd to the workspace, through symlinks too', () => {
    expect(planLaunch({ cwd: 'src/app' }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: true, value: { cwdLabel: 'src/app' } });
    expect(planLaunch({ cwd: 'inside-link/app' }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: true, value: { cwdLabel: 'src/app' } });
    for (const cwd of ['..', '../..', '/', outside, 'escape', 'src/../../']) {
      expect(planLaunch({ cwd }, { root, shell: '/bin/sh', env })).toEqual({ ok: false, error: { code: 'bad_request', message: '"cwd" must be inside the workspace' } });
    }
    expect(planLaunch({ cwd: 'nope' }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: false, error: { message: '"cwd" does not exist: nope' } });
  });

  it('finds commands on PATH and checks arguments, environment and size', () => {
    expect(planLaunch({ command: 'ls', args: ['-la'] }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: true, value: { file: expect.stringMatching(/\/ls$/), args: ['-la'] } });
    expect(planLaunch({ command: 'definitely-not-here' }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: false, error: { message: 'command not found: definitely-not-here' } });
    expect(planLaunch({ args: ['x'] }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: false, error: { message: '"args" needs a "command"' } });
    expect(planLaunch({ command: 'ls', args: ['a\0b'] }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: false });
    expect(planLaunch({ env: { 'A=B': 'x' } }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: false });
    expect(planLaunch({ env: { FOO: 'bar' } }, { root, shell: '/bin/sh', env })).toMatchObject({ ok: true, value: { env: { FOO: 'bar', TERM: 'xterm-256color', PATH: '/usr/bin:/bin' } } });
    for (const size of [{ cols: 0 }, { rows: 1001 }, { cols: 2.5 }]) expect(planLaunch(size, { root, shell: '/bin/sh', env }).ok).toBe(false);
  });
});
