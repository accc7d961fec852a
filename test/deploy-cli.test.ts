import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunnerImage, largeText, makeFolder, requireEngine, RUNNER_IMAGE } from './support/images.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { runProgram, userEnv, WHARF } from './support/wharf-cli.ts';

/** `wharf deploy` / `wharf destroy` from a folder on the user's machine, against a real server and BuildKit. */
describe('deploy: the CLI deploys a local folder', () => {
  let server: TestServer;
  let project: string;
  let broken: string;
  let large: string;
  let configHome: string;

  /** The helper run in `cwd` with the server in its environment; `lines` says when each piece of stdout came. */
  async function wharf(cwd: string, args: string[], env: Record<string, string> = {}) {
    const started = Date.now();
    const lines: Array<{ at: number; text: string }> = [];
    const run = await runProgram(process.execPath, [WHARF, ...args], {
      cwd,
      env: userEnv(configHome, { WHARF_URL: server.url, WHARF_TOKEN: server.token, ...env }),
      onStdout: (d) => lines.push({ at: Date.now() - started, text: String(d) }),
    });
    return { ...run, lines };
  }

  beforeAll(async () => {
    const docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    server = await startTestServer({ argv: ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE] });
    configHome = await server.tempDir('wharf-cli-home-');
    project = await makeFolder({
      'okteto.yml': [
        'deploy:',
        '  remote: true',
        '  commands:',
        '    - name: greet',
        '      command: echo "hello $WHO from $(pwd)"; echo "progress" >&2; sleep 2; echo done-greeting',
        '    - name: files',
        '      command: find . -type f | sort',
        'destroy:',
        '  - echo tearing down',
        '  - name: breaks',
        '    command: echo oops >&2; exit 3',
        '  - echo never',
      ].join('\n'),
      '.oktetoignore': 'local-secret.txt\n',
      'local-secret.txt': 'do not send\n',
      'app/main.sh': { content: 'echo app\n', mode: 0o755 },
    });
    broken = await makeFolder({ 'okteto.yml': 'deploy:\n  remote: maybe\n  commands: [x]\n' });
    large = await makeFolder({
      'okteto.yml': "deploy:\n  remote: true\n  commands:\n    - 'md5sum data/*.bin'\n",
      ...Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`data/part${i}.bin`, largeText(`cli-seed-${i}`)])),
    });
  });

  afterAll(async () => {
    await server?.dispose();
    await Promise.all([project, broken, large].filter(Boolean).map((d) => rm(d, { recursive: true, force: true })));
  });

  it('packs, uploads and streams each command as it runs', async () => {
    const result = await wharf(project, ['deploy', '--var', 'WHO=cli']);
    expect(result.stderr).not.toMatch(/wharf: (?!warning)/);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('▶ [1/2] greet\nhello cli from /okteto/src\n');
    expect(result.stdout).toMatch(/✔ \[1\/2\] greet \(2\.\d s\)/);
    expect(result.stdout).toContain('▶ [2/2] files\n');
    expect(result.stdout).toContain('./app/main.sh\n');
    expect(result.stdout).not.toContain('local-secret.txt');
    expect(result.stdout).toMatch(/2 commands succeeded in [\d.]+ s\n$/);
    expect(result.stderr).toContain('progress\n');
    // The first line was on screen while the command still slept.
    const hello = result.lines.find((l) => l.text.includes('hello cli'));
    const finished = result.lines.find((l) => l.text.includes('done-greeting'));
    expect(finished!.at - hello!.at).toBeGreaterThan(1500);
  });

  it('uploads a context of many packing blocks intact (blocks are reused only once they have left)', async () => {
    const result = await wharf(large, ['deploy']);
    expect(result.code).toBe(0);
    const expected = Array.from({ length: 4 }, (_, i) => `${createHash('md5').update(largeText(`cli-seed-${i}`)).digest('hex')}  data/part${i}.bin`);
    expect(result.stdout).toContain(`${expected.join('\n')}\n`);
  });

  it('exits with the failing command\'s exit code', async () => {
    const result = await wharf(project, ['destroy', '--remote']);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain('tearing down\n');
    expect(result.stderr).toContain('oops\n');
    expect(result.stderr).toMatch(/✘ \[2\/3\] breaks failed with exit code 3/);
    expect(result.stderr).toContain('wharf: command 2 (breaks) failed with exit code 3\n');
    expect(result.stdout).not.toContain('never');
  });

  it('runs on this machine with --remote=false, and remotely again with OKTETO_FORCE_REMOTE', async () => {
    const local = await wharf(project, ['destroy', '--remote=false']);
    expect(local.code).toBe(3);
    expect(local.stderr).toContain('local execution is deprecated');
    const forced = await wharf(project, ['destroy'], { OKTETO_FORCE_REMOTE: 'true' });
    expect(forced.code).toBe(3);
    expect(forced.stdout).toMatch(/Running 3 commands remotely in wharf-test\/runner/);
  });

  it('explains a broken manifest with its position', async () => {
    const result = await wharf(broken, ['deploy']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('wharf: okteto.yml:2:11: deploy.remote must be true or false, got the text "maybe"\n');
  });
});
