import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from './agent-config.ts';

const required = ['--socket', '/run/a.sock', '--root', '/w', '--host-key', '/k', '--authorized-keys', '/a'];

describe('agent config', () => {
  it('caps session keys at 7 days and control frames at 64 KiB unless told', () => {
    const { limits } = loadAgentConfig({ argv: required, env: {} });
    expect(limits).toMatchObject({ maxSessionKeyTtlMs: 7 * 24 * 3_600_000, maxControlFrameBytes: 64 * 1024 });
  });

  it('takes the session-key cap the server passes', () => {
    expect(loadAgentConfig({ argv: [...required, '--max-key-ttl-ms', '3600000'], env: {} }).limits.maxSessionKeyTtlMs).toBe(3_600_000);
    expect(() => loadAgentConfig({ argv: [...required, '--max-key-ttl-ms', 'soon'], env: {} })).toThrow(/--max-key-ttl-ms must be a positive whole number/);
  });
});
