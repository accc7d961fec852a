import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadCliConfig } from '../config/index.ts';
import { parseServerUrl } from './credentials.ts';
import { createCliContext, runCli } from './run-cli.ts';
import type { CliArgs, CliCommand } from './types.ts';

/** Runs a command line against a tiny registry, capturing what the command received. */
async function run(argv: string[]) {
  const seen: CliArgs[] = [];
  const commands: CliCommand[] = [
    {
      name: ['ssh'],
      summary: 'open a shell',
      usage: 'ssh <workspace> [command...]',
      options: { tty: { type: 'boolean', short: 't', description: 'pty' }, identity: { type: 'string', short: 'i', description: 'key' } },
      passthroughAfter: 1,
      run: async (_ctx, args) => (seen.push(args), 7),
    },
    { name: ['agent', 'bridge'], summary: 'bridge', usage: 'agent bridge', run: async () => 0 },
  ];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d));
  stderr.on('data', (d: Buffer) => (err += d));
  const config = loadCliConfig({ argv, env: { HOME: '/nonexistent' } });
  const code = await runCli(commands, createCliContext(config, { stdin: new PassThrough(), stdout, stderr }));
  return { code, out, err, args: seen[0] };
}

describe('command line parsing', () => {
  it('passes everything after the workspace through untouched', async () => {
    expect((await run(['ssh', 'ws1', 'ls', '-la', '--color'])).args).toEqual({ positionals: ['ws1'], values: {}, rest: ['ls', '-la', '--color'] });
    expect((await run(['ssh', '-t', '-i', 'k.pub', 'ws1', '--', 'echo', 'hi'])).args).toEqual({
      positionals: ['ws1'],
      values: { tty: true, identity: 'k.pub' },
      rest: ['echo', 'hi'],
    });
    expect((await run(['ssh', 'ws1'])).code).toBe(7);
  });

  it('refuses unknown options and commands with exit code 2', async () => {
    const bad = await run(['ssh', '--bogus', 'ws1']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^wharf: Unknown option '--bogus'/);
    expect(bad.err).toMatch(/Run "wharf ssh --help"/);
    const unknown = await run(['sshh']);
    expect(unknown).toMatchObject({ code: 2, err: 'wharf: unknown command "sshh"; run "wharf --help" for the list\n' });
  });

  it('prints help for everything, per command and per group', async () => {
    expect((await run(['--help'])).out).toMatch(/Commands:\n  ssh +open a shell\n  agent bridge  bridge\n/);
    expect((await run(['ssh', '--help'])).out).toMatch(/^Usage: wharf ssh <workspace> \[command\.\.\.\]\n/);
    expect((await run(['help', 'ssh'])).out).toMatch(/-i, --identity <value>\s+key/);
    const group = await run(['agent']);
    expect(group.code).toBe(2);
    expect(group.err).toMatch(/Usage: wharf agent <command>/);
    expect((await run(['agent', '--help'])).code).toBe(0);
  });
});

describe('server URLs', () => {
  it('normalises the URL and takes the token from a pasted login URL', () => {
    expect(parseServerUrl('http://127.0.0.1:8080/')).toEqual({ ok: true, value: { url: 'http://127.0.0.1:8080', token: undefined } });
    expect(parseServerUrl('https://ide.example/wharf/login?token=abc')).toEqual({ ok: true, value: { url: 'https://ide.example/wharf', token: 'abc' } });
    expect(parseServerUrl('ftp://x')).toMatchObject({ ok: false, error: { code: 'usage' } });
    expect(parseServerUrl('not a url')).toMatchObject({ ok: false, error: { message: /is not a URL/ } });
  });
});
