import { describe, expect, it } from 'vitest';
import { loadServerConfig } from './load-config.ts';

describe('server config', () => {
  it('uses safe defaults', () => {
    const config = loadServerConfig({ argv: [], env: { HOME: '/home/u' } });
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8080);
    expect(config.dataDir).toBe('/home/u/.local/share/wharf');
    expect(config.token).toBeUndefined();
    expect(config.limits).toMatchObject({ terminalClientsPerLink: 20, terminalClientsPerTerminal: 50, terminalClientsPerAdmin: 200, sshLoginGraceMs: 30_000, sshMaxStartups: 100 });
  });

  it('lets flags win over environment', () => {
    const config = loadServerConfig({
      argv: ['--port', '9000', '--admin-var', 'OKTETO_FORCE_REMOTE=true'],
      env: { WHARF_PORT: '7000', WHARF_HOST: '0.0.0.0', WHARF_TOKEN: 't', WHARF_DATA_DIR: '/d', WHARF_ADMIN_VARS: 'A=1' },
    });
    expect(config).toMatchObject({ port: 9000, host: '0.0.0.0', token: 't', dataDir: '/d' });
    expect(config.adminVariables).toEqual({ A: '1', OKTETO_FORCE_REMOTE: 'true' });
  });

  it('reads extra browser origins from --allowed-origin (repeatable) and WHARF_ALLOWED_ORIGINS', () => {
    expect(loadServerConfig({ argv: [], env: {} }).allowedOrigins).toEqual([]);
    const config = loadServerConfig({ argv: ['--allowed-origin', 'https://IDE.example.com/', '--allowed-origin', 'http://10.0.0.5:8080'], env: { WHARF_ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443' } });
    expect(config.allowedOrigins).toEqual(['https://a.example', 'https://b.example:8443', 'https://ide.example.com', 'http://10.0.0.5:8080']);
    for (const bad of ['ide.example.com', 'https://ide.example.com/app', 'ftp://x.example', 'https://x.example?a=1']) {
      expect(() => loadServerConfig({ argv: ['--allowed-origin', bad], env: {} }), bad).toThrow(/--allowed-origin: expected an origin/);
    }
    expect(() => loadServerConfig({ argv: ['--public-url', 'ide.example.com'], env: {} })).toThrow(/--public-url: expected a URL/);
    expect(loadServerConfig({ argv: ['--public-url', 'https://ide.example.com/'], env: {} }).publicUrl).toBe('https://ide.example.com');
  });

  it('chooses the process driver by default, with its settings grouped under drivers.process', () => {
    const config = loadServerConfig({ argv: ['--sandbox', 'none'], env: { XDG_RUNTIME_DIR: '/run/user/1' } });
    expect(config.driver).toBe('process');
    expect(config.drivers.process).toEqual({ sandbox: 'none', runtimeDir: '/run/user/1' });
    expect(loadServerConfig({ argv: [], env: { WHARF_DRIVER: 'process' } }).driver).toBe('process');
  });

  it('refuses bad values with a clear message', () => {
    expect(() => loadServerConfig({ argv: ['--port', 'abc'], env: {} })).toThrow(/invalid port/);
    expect(() => loadServerConfig({ argv: ['--sandbox', 'chroot'], env: {} })).toThrow(/--sandbox/);
    expect(() => loadServerConfig({ argv: ['--driver', 'lxc'], env: {} })).toThrow(/--driver must be process, docker, kubernetes/);
    expect(() => loadServerConfig({ argv: ['--driver', 'docker'], env: {} })).toThrow(/docker driver is not available yet/);
    expect(() => loadServerConfig({ argv: [], env: { WHARF_DRIVER: 'kubernetes' } })).toThrow(/kubernetes driver is not available yet/);
    expect(() => loadServerConfig({ argv: ['--bogus'], env: {} })).toThrow();
    expect(() => loadServerConfig({ argv: ['--terminal-clients', '0'], env: {} })).toThrow(/--terminal-clients: expected a positive whole number/);
    expect(() => loadServerConfig({ argv: ['--ssh-login-grace', 'soon'], env: {} })).toThrow(/--ssh-login-grace/);
  });
});
