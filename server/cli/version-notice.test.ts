import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadCliConfig } from '../config/index.ts';
import { createCliContext, runCli } from './run-cli.ts';
import { createVersionNotice } from './version-notice.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d));
  return { stream, text: () => text };
}

describe('the notice of a helper older than its server', () => {
  it('says once, in one line, how to update, and only when the server is newer', () => {
    const err = capture();
    const notice = createVersionNotice('0.1.0', err.stream);
    notice('https://ide.example', undefined);
    notice('https://ide.example', '0.1.0');
    notice('https://ide.example', '0.0.9');
    notice('https://ide.example', 'not-a-version');
    expect(err.text()).toBe('');
    notice('https://ide.example', '0.2.0');
    notice('https://ide.example', '0.3.0');
    expect(err.text()).toBe('wharf: this helper is 0.1.0, the server is 0.2.0: update with curl -fsSL https://ide.example/downloads/install.sh | sh\n');
  });

  it('tells a pre-release helper about its release', () => {
    const err = capture();
    createVersionNotice('1.0.0-rc.1', err.stream)('http://127.0.0.1:8080', '1.0.0');
    expect(err.text()).toMatch(/^wharf: this helper is 1\.0\.0-rc\.1, the server is 1\.0\.0: update with curl -fsSL http:\/\/127\.0\.0\.1:8080\/downloads\/install\.sh \| sh\n$/);
  });
});

describe('wharf --version', () => {
  it('prints the version the helper was built with', async () => {
    for (const [argv, helperVersion] of [[['--version'], '0.4.2'], [['-V'], '1.0.0-beta.1']] as const) {
      const out = capture();
      const err = capture();
      const config = loadCliConfig({ argv: [...argv], env: { HOME: '/nonexistent' } });
      const code = await runCli([], createCliContext(config, { stdin: new PassThrough(), stdout: out.stream, stderr: err.stream }, { helperVersion }));
      expect({ code, out: out.text(), err: err.text() }).toEqual({ code: 0, out: `wharf ${helperVersion}\n`, err: '' });
    }
  });

  it('says with --verbose which node runs it and which ciphers SSH uses, after the version line', async () => {
    const out = capture();
    const config = loadCliConfig({ argv: ['--version', '--verbose'], env: { HOME: '/nonexistent' } });
    const code = await runCli([], createCliContext(config, { stdin: new PassThrough(), stdout: out.stream, stderr: capture().stream }, { helperVersion: '0.4.2' }));
    expect(code).toBe(0);
    // From the checkout ssh2 finds the add-on npm built for it (the executable's case); the
    // bundles' "Node's crypto" line is checked on the downloaded files (test/downloads.test.ts).
    expect(out.text()).toBe(`wharf 0.4.2\nnode ${process.version} (${process.execPath})\nssh ciphers: native (ssh2's sshcrypto.node)\n`);
  });
});
