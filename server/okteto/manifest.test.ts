import { describe, expect, it } from 'vitest';
import { parseManifest } from './manifest.ts';
import { decideMode, mergeVariables, validateRelativePath, validateVariables } from './plan.ts';

function parsed(text: string) {
  const result = parseManifest(text, 'okteto.yml');
  if (!result.ok) throw new Error(result.error.message);
  return result.value;
}

function failure(text: string): string {
  const result = parseManifest(text, 'okteto.yml');
  if (result.ok) throw new Error('expected a failure');
  return result.error.message;
}

describe('manifest', () => {
  it('refuses a hostile manifest fast, naming the limit, and still parses a big realistic one', () => {
    const started = performance.now();
    // 60k keys (560 KB) froze the event loop for 27 s; the same keys under the size cap, too.
    const keys = (n: number) => `deploy: [echo]\n${Array.from({ length: n }, (_, i) => `k${i}: v`).join('\n')}\n`;
    expect(failure(keys(60_000))).toMatch(/^okteto\.yml is larger than 256 KiB \(\d+ KiB\)$/);
    expect(failure(keys(25_000))).toBe('okteto.yml has more than 20000 keys and values (nodes)');
    // Deep flow nesting took 7.5 s.
    expect(failure(`deploy: ${'['.repeat(100_000)}${']'.repeat(100_000)}`)).toBe('okteto.yml is nested deeper than 64 levels');
    expect(failure(`deploy: ${'['.repeat(1000)}${']'.repeat(1000)}`)).toBe('okteto.yml is nested deeper than 64 levels');
    expect(failure(`deploy:\n${Array.from({ length: 100 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} x\n`)).toBe('okteto.yml is nested deeper than 64 levels');
    expect(failure(`deploy: ${'- '.repeat(100)}x\n`)).toBe('okteto.yml is nested deeper than 64 levels');
    expect(performance.now() - started).toBeLessThan(2000);
    // 300 commands with names, a dev section of 50 services: about 60 KB.
    const commands = Array.from({ length: 300 }, (_, i) => `    - name: step ${i}\n      command: helm upgrade --install svc-${i} chart/ --set image.tag=\${TAG} --wait`).join('\n');
    const dev = Array.from({ length: 50 }, (_, i) => `  svc-${i}:\n    command: bash\n    sync: [".:/app"]\n    forward: ["${8000 + i}:8080"]`).join('\n');
    const big = parsed(`name: big\ndeploy:\n  remote: true\n  commands:\n${commands}\ndev:\n${dev}\n`);
    expect(big.manifest.deploy?.commands).toHaveLength(300);
  });

  it('reads command lists in both forms and the object form', () => {
    const { manifest, warnings } = parsed(
      [
        'name: shop',
        'build: {api: {context: api}}',
        'dev: {api: {command: bash}}',
        'deploy:',
        '  - echo one',
        '  - name: two',
        '    command: echo two',
        'destroy:',
        '  remote: true',
        '  image: wharf-test/runner',
        '  context: infra',
        '  commands: [helm uninstall shop]',
      ].join('\n'),
    );
    expect(warnings).toEqual([]);
    expect(manifest.name).toBe('shop');
    expect(manifest.deploy).toEqual({ commands: [{ name: 'echo one', command: 'echo one' }, { name: 'two', command: 'echo two' }] });
    expect(manifest.destroy).toEqual({ remote: true, image: 'wharf-test/runner', context: 'infra', commands: [{ name: 'helm uninstall shop', command: 'helm uninstall shop' }] });
  });

  it('warns about unknown keys with their position', () => {
    const { warnings } = parsed(['deploy:', '  commands: [x]', '  compose: docker-compose.yml', 'colour: blue', 'dependencies: {}', 'external: {}', 'icon: x', 'test: {}'].join('\n'));
    expect(warnings).toEqual(['okteto.yml:3:3: unknown key "deploy.compose" is ignored', 'okteto.yml:4:1: unknown key "colour" is ignored']);
  });

  it('reports wrong types with file, line, column and what was expected', () => {
    expect(failure('deploy:\n  remote: yes\n  commands: [x]\n')).toBe('okteto.yml:2:11: deploy.remote must be true or false, got the text "yes"');
    expect(failure('deploy:\n  - echo ok\n  - 42\n')).toBe('okteto.yml:3:5: deploy command 2 must be a command: text, or a mapping {name, command}; got the number 42');
    expect(failure('deploy:\n  - name: x\n    command: [a, b]\n')).toBe('okteto.yml:3:14: deploy command 1: command must be text, got a list');
    expect(failure('destroy: 7\n')).toMatch(/^okteto\.yml:1:10: destroy must be a list of commands or a mapping/);
    expect(failure('deploy:\n  commands: {a: b}\n')).toBe('okteto.yml:2:13: deploy.commands must be a list of commands, got a mapping');
    expect(failure('- a\n- b\n')).toMatch(/^okteto\.yml:1:1: the manifest must be a mapping/);
  });

  it('reports empty command lists plainly', () => {
    expect(failure('deploy: []\n')).toBe('okteto.yml:1:9: deploy has no commands (the list is empty)');
    expect(failure('deploy:\n')).toBe('okteto.yml:1:1: deploy has no commands');
    expect(failure('deploy:\n  remote: true\n')).toBe('okteto.yml:1:1: deploy has no commands (add a "commands" list)');
    expect(failure('deploy:\n  - ""\n')).toBe('okteto.yml:2:5: deploy command 1 is empty');
    expect(failure('')).toBe('okteto.yml: the manifest is empty');
  });

  it('reports YAML syntax errors with their position', () => {
    expect(failure('deploy:\n  - a\n b: [\n')).toMatch(/^okteto\.yml:\d+:\d+: /);
    expect(failure('deploy: [a]\ndeploy: [b]\n')).toMatch(/^okteto\.yml:2:1: Map keys must be unique/);
  });
});

describe('remote or local', () => {
  const section = { commands: [{ name: 'x', command: 'x' }] };
  const decide = (over: Partial<Parameters<typeof decideMode>[0]>) =>
    decideMode({ section, remoteFlag: undefined, callerVariables: {}, adminVariables: {}, ...over }).mode;

  it('follows the flag, the manifest and OKTETO_FORCE_REMOTE in that order', () => {
    expect(decide({})).toBe('local');
    expect(decide({ remoteFlag: true })).toBe('remote');
    expect(decide({ section: { ...section, remote: true } })).toBe('remote');
    expect(decide({ section: { ...section, image: 'img' } })).toBe('remote');
    expect(decide({ callerVariables: { OKTETO_FORCE_REMOTE: 'true' } })).toBe('remote');
    expect(decide({ adminVariables: { OKTETO_FORCE_REMOTE: '1' } })).toBe('remote');
    expect(decide({ adminVariables: { OKTETO_FORCE_REMOTE: 'false' } })).toBe('local');
  });

  it('lets an explicit "off" win over everything that forces remote', () => {
    expect(decide({ remoteFlag: false, section: { ...section, remote: true }, adminVariables: { OKTETO_FORCE_REMOTE: 'true' } })).toBe('local');
    expect(decide({ section: { ...section, remote: false, image: 'img' }, callerVariables: { OKTETO_FORCE_REMOTE: 'true' } })).toBe('local');
    expect(decide({ remoteFlag: true, section: { ...section, remote: false } })).toBe('remote');
  });

  it('lets a caller variable win over an admin variable of the same name', () => {
    expect(mergeVariables({ A: 'admin', B: 'admin' }, { B: 'caller' })).toEqual({ A: 'admin', B: 'caller' });
  });

  it('validates untrusted variables and paths', () => {
    expect(validateVariables({ OK_1: 'v' })).toEqual({ ok: true, value: { OK_1: 'v' } });
    expect(validateVariables({ '1BAD': 'v' }).ok).toBe(false);
    expect(validateVariables({ 'A;rm': 'v' }).ok).toBe(false);
    expect(validateVariables({ A: 1 }).ok).toBe(false);
    expect(validateVariables(['A=1']).ok).toBe(false);
    expect(validateRelativePath('./app/okteto.yml', 'file')).toEqual({ ok: true, value: 'app/okteto.yml' });
    expect(validateRelativePath('../etc/passwd', 'file').ok).toBe(false);
    expect(validateRelativePath('/etc/passwd', 'file').ok).toBe(false);
  });
});
