import { describe, expect, it } from 'vitest';
import { loadCliConfig } from './cli-config.ts';

describe('CLI config', () => {
  it('keeps credentials under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(loadCliConfig({ argv: [], env: { HOME: '/home/u' } })).toMatchObject({
      credentialsFile: '/home/u/.config/wharf/credentials.json',
      stateDir: '/home/u/.local/state/wharf',
      sshDir: '/home/u/.ssh',
      override: { url: undefined, token: undefined },
      term: 'xterm-256color',
    });
    expect(loadCliConfig({ argv: [], env: { HOME: '/home/u', XDG_STATE_HOME: '/state' } }).stateDir).toBe('/state/wharf');
    expect(loadCliConfig({ argv: ['ssh'], env: { HOME: '/home/u', XDG_CONFIG_HOME: '/cfg', WHARF_URL: 'http://h', WHARF_TOKEN: 't', TERM: 'vt100' } })).toMatchObject({
      argv: ['ssh'],
      credentialsFile: '/cfg/wharf/credentials.json',
      override: { url: 'http://h', token: 't' },
      term: 'vt100',
    });
  });

  it('gives API requests 30 s unless WHARF_REQUEST_TIMEOUT says otherwise', () => {
    expect(loadCliConfig({ argv: [], env: {} }).limits.requestTimeoutMs).toBe(30_000);
    expect(loadCliConfig({ argv: [], env: { WHARF_REQUEST_TIMEOUT: '2m' } }).limits.requestTimeoutMs).toBe(120_000);
    expect(() => loadCliConfig({ argv: [], env: { WHARF_REQUEST_TIMEOUT: 'later' } })).toThrow(/WHARF_REQUEST_TIMEOUT: expected a duration/);
  });
});
