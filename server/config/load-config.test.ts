import { fileURLToPath } from 'node:url';
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

  it('runs sandboxed workspaces as nobody by default, as a given numeric uid[:gid], and refuses names', () => {
    expect(loadServerConfig({ argv: [], env: {} }).drivers.process.sandboxUser).toEqual({ uid: 65534, gid: 65534 });
    expect(loadServerConfig({ argv: ['--sandbox-user', '1000:1001'], env: {} }).drivers.process.sandboxUser).toEqual({ uid: 1000, gid: 1001 });
    expect(loadServerConfig({ argv: [], env: { WHARF_SANDBOX_USER: '2000' } }).drivers.process.sandboxUser).toEqual({ uid: 2000, gid: 2000 });
    for (const bad of ['nobody', '1.5', '1000:', '1:2:3', '99999999999']) {
      expect(() => loadServerConfig({ argv: ['--sandbox-user', bad], env: {} }), bad).toThrow(/--sandbox-user must be a numeric uid or uid:gid/);
    }
  });

  it('reads every timeout and cap it passes down, with today\'s values as defaults', () => {
    const defaults = loadServerConfig({ argv: [], env: {} }).limits;
    expect(defaults).toMatchObject({
      agentStartTimeoutMs: 15_000,
      sessionKeyDefaultTtlMs: 3_600_000,
      sessionKeyMaxTtlMs: 24 * 3_600_000,
      terminalShareMaxTtlMs: 7 * 24 * 3_600_000,
      terminalSharesPerWorkspace: 500,
      builderTimeoutMs: 10_000,
      deployFinishedRetentionMs: 60_000,
      deployShutdownGraceMs: 5000,
    });
    const set = loadServerConfig({
      argv: ['--agent-start-timeout', '1m', '--share-max-ttl', '2d'],
      env: { WHARF_SESSION_KEY_MAX_TTL: '90m', WHARF_BUILDER_TIMEOUT: '30', WHARF_AGENT_START_TIMEOUT: '5s' },
    }).limits;
    expect(set).toMatchObject({ agentStartTimeoutMs: 60_000, sessionKeyMaxTtlMs: 90 * 60_000, terminalShareMaxTtlMs: 2 * 24 * 3_600_000, builderTimeoutMs: 30_000 });
    expect(() => loadServerConfig({ argv: ['--session-key-max-ttl', '1w'], env: {} })).toThrow(/--session-key-max-ttl: expected a duration/);
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
    expect(config.driverKinds).toEqual(['process']);
    expect(config.drivers.process).toEqual({ sandbox: 'none', sandboxUser: { uid: 65534, gid: 65534 }, runtimeDir: '/run/user/1' });
    expect(loadServerConfig({ argv: [], env: { WHARF_DRIVER: 'process' } }).driver).toBe('process');
  });

  it('reads the deploy commands\' kubeconfig from --deploy-kubeconfig / WHARF_DEPLOY_KUBECONFIG, the old names with a warning', () => {
    expect(loadServerConfig({ argv: [], env: {} })).toMatchObject({ deploy: { kubeconfig: undefined }, warnings: [] });
    expect(loadServerConfig({ argv: ['--deploy-kubeconfig', '/k/new'], env: { WHARF_DEPLOY_KUBECONFIG: '/k/env' } })).toMatchObject({ deploy: { kubeconfig: '/k/new' }, warnings: [] });
    expect(loadServerConfig({ argv: [], env: { WHARF_DEPLOY_KUBECONFIG: '/k/env' } })).toMatchObject({ deploy: { kubeconfig: '/k/env' }, warnings: [] });
    expect(loadServerConfig({ argv: ['--kubeconfig', '/k/old'], env: {} })).toMatchObject({
      deploy: { kubeconfig: '/k/old' },
      warnings: ['--kubeconfig is deprecated: use --deploy-kubeconfig, the kubeconfig handed to deploy commands'],
    });
    expect(loadServerConfig({ argv: [], env: { WHARF_KUBECONFIG: '/k/old-env' } })).toMatchObject({
      deploy: { kubeconfig: '/k/old-env' },
      warnings: ['WHARF_KUBECONFIG is deprecated: use WHARF_DEPLOY_KUBECONFIG, the kubeconfig handed to deploy commands'],
    });
    // The new name wins; the old one is still pointed out, as ignored.
    expect(loadServerConfig({ argv: ['--deploy-kubeconfig', '/k/new', '--kubeconfig', '/k/old'], env: { WHARF_KUBECONFIG: '/k/old-env' } })).toMatchObject({
      deploy: { kubeconfig: '/k/new' },
      warnings: [
        '--kubeconfig is deprecated (and ignored: --deploy-kubeconfig is set): use --deploy-kubeconfig, the kubeconfig handed to deploy commands',
        'WHARF_KUBECONFIG is deprecated (and ignored: --deploy-kubeconfig is set): use WHARF_DEPLOY_KUBECONFIG, the kubeconfig handed to deploy commands',
      ],
    });
  });

  it('finds the built agent and the served artifacts under the checkout\'s dist/ unless told otherwise', () => {
    const codeRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
    expect(loadServerConfig({ argv: [], env: {} })).toMatchObject({ agentBundle: `${codeRoot}/dist/agent`, artifactsDir: `${codeRoot}/dist` });
    expect(loadServerConfig({ argv: [], env: { WHARF_AGENT_BUNDLE: '/opt/wharf/agent', WHARF_ARTIFACTS_DIR: '/opt/wharf' } })).toMatchObject({ agentBundle: '/opt/wharf/agent', artifactsDir: '/opt/wharf' });
    const flags = loadServerConfig({ argv: ['--agent-bundle', '/srv/a/', '--artifacts-dir', '/srv/d'], env: { WHARF_AGENT_BUNDLE: '/opt/x', WHARF_ARTIFACTS_DIR: '/opt/y' } });
    expect(flags).toMatchObject({ agentBundle: '/srv/a', artifactsDir: '/srv/d' });
  });

  it('reads the docker driver settings: engine, image, user, network and default limits', () => {
    const config = loadServerConfig({
      argv: ['--driver', 'docker', '--workspace-image', 'dev:1', '--workspace-memory', '2g', '--workspace-cpus', '1.5'],
      env: { WHARF_DOCKER_HOST: 'unix:///run/podman.sock', WHARF_WORKSPACE_PIDS: '256', WHARF_WORKSPACE_NETWORK: 'host' },
    });
    expect(config.driver).toBe('docker');
    expect(config.drivers.docker).toEqual({ host: 'unix:///run/podman.sock', image: 'dev:1', user: { uid: 65534, gid: 65534 }, network: 'host', resources: { cpus: 1.5, memory: 2 * 1024 ** 3, pids: 256 } });
    expect(() => loadServerConfig({ argv: ['--driver', 'docker', '--workspace-image', 'x', '--workspace-memory', 'much'], env: {} })).toThrow(/memory/);
    expect(() => loadServerConfig({ argv: ['--driver', 'docker', '--workspace-image', 'x', '--workspace-user', '0'], env: {} })).toThrow(/not run as root/);
    expect(() => loadServerConfig({ argv: ['--driver', 'docker', '--workspace-image', 'x', '--docker-host', 'docker.sock'], env: {} })).toThrow(/--docker-host/);
  });

  it('refuses bad values with a clear message', () => {
    expect(() => loadServerConfig({ argv: ['--port', 'abc'], env: {} })).toThrow(/invalid port/);
    expect(() => loadServerConfig({ argv: ['--sandbox', 'chroot'], env: {} })).toThrow(/--sandbox/);
    expect(() => loadServerConfig({ argv: ['--driver', 'lxc'], env: {} })).toThrow(/--driver must be process, docker, kubernetes/);
    expect(() => loadServerConfig({ argv: ['--driver', 'process,process'], env: {} })).toThrow(/names "process" twice/);
    expect(() => loadServerConfig({ argv: ['--driver', ' , '], env: {} })).toThrow(/one or more of/);
    expect(() => loadServerConfig({ argv: ['--driver', 'process,lxc'], env: {} })).toThrow(/got "lxc"/);
    expect(() => loadServerConfig({ argv: ['--driver', 'docker'], env: {} })).toThrow(/--driver docker needs --workspace-image/);
    expect(() => loadServerConfig({ argv: [], env: { WHARF_DRIVER: 'kubernetes' } })).toThrow(/--driver kubernetes needs --workspace-image/);
    expect(() => loadServerConfig({ argv: ['--bogus'], env: {} })).toThrow();
    expect(() => loadServerConfig({ argv: ['--terminal-clients', '0'], env: {} })).toThrow(/--terminal-clients: expected a positive whole number/);
    expect(() => loadServerConfig({ argv: ['--ssh-login-grace', 'soon'], env: {} })).toThrow(/--ssh-login-grace/);
  });
});
