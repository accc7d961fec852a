import { describe, expect, it } from 'vitest';
import { parseManifest } from './manifest.ts';

const parse = (text: string) => parseManifest(text, '/proj/okteto.yml');

describe('dev sections (hybrid mode)', () => {
  it('reads a hybrid service: command, workdir, rules, environment and interface', () => {
    const parsed = parse(`name: shop
dev:
  api:
    mode: hybrid
    command: ["npm", "start"]
    workdir: ./api
    forward:
      - 5432:db:5432
      - 8080:80
      - {localPort: 6379, remotePort: 6379, name: redis}
    reverse:
      - 9000:3000
    environment:
      LOG_LEVEL: debug
      PORT: 3000
    interface: 0.0.0.0
    selector: {app: api}
    sync: [".:/app"]
  web:
    command: yarn dev
    environment: ["A=1", "B=x=y"]
`);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const { api, web } = parsed.value.manifest.dev ?? {};
    expect(api).toMatchObject({
      mode: 'hybrid',
      command: ['npm', 'start'],
      workdir: '/proj/api',
      rules: {
        forward: [
          { localPort: 5432, host: 'db', remotePort: 5432 },
          { localPort: 8080, host: 'localhost', remotePort: 80 },
          { localPort: 6379, host: 'redis', remotePort: 6379 },
        ],
        reverse: [{ remotePort: 9000, localPort: 3000 }],
      },
      environment: { LOG_LEVEL: 'debug', PORT: '3000' },
      interface: '0.0.0.0',
    });
    expect(api?.selector).toEqual({ app: 'api' });
    expect(api?.notices).toEqual([]);
    expect(parsed.value.warnings).toEqual([expect.stringMatching(/okteto\.yml:18:5: "dev\.api\.sync" is not used by wharf up/)]);
    expect(web).toMatchObject({ mode: 'sync', command: ['/bin/sh', '-c', 'yarn dev'], workdir: '/proj', environment: { A: '1', B: 'x=y' }, interface: '127.0.0.1' });
  });

  it('names the line, column, field and expected form of every kind of mistake', () => {
    const cases: Array<[string, RegExp]> = [
      ['dev:\n  api:\n    reverse: ["9000:api:3000"]\n', /okteto\.yml:3:15: dev\.api\.reverse\[0\]: "9000:api:3000": a reverse rule names no service; expected "remote:local"/],
      ['dev:\n  api:\n    forward: ["8080:70000"]\n', /okteto\.yml:3:15: dev\.api\.forward\[0\]: the remote port 70000 is out of range \(1-65535\)/],
      ['dev:\n  api:\n    forward:\n      - 8080:80\n      - 8080:81\n', /okteto\.yml:5:9: dev\.api\.forward\[1\]: local port 8080 is already used by dev\.api\.forward\[0\]/],
      ['dev:\n  api:\n    forward: ["5432:My_DB:5432"]\n', /okteto\.yml:3:15: dev\.api\.forward\[0\]: service name "My_DB" is not a valid DNS label/],
      ['dev:\n  api:\n    mode: turbo\n', /okteto\.yml:3:11: dev\.api\.mode: unknown mode "turbo" \(expected hybrid or sync\)/],
      ['dev:\n  api:\n    forward: 8080:80\n', /okteto\.yml:3:14: dev\.api\.forward must be a list of rules/],
      ['dev:\n  api:\n    environment: ["NOPE"]\n', /okteto\.yml:3:19: dev\.api\.environment\[0\] must be "NAME=value"/],
      ['dev:\n  api:\n    interface: everywhere\n', /okteto\.yml:3:16: dev\.api\.interface must be an IPv4 address/],
      ['dev:\n  api: hybrid\n', /okteto\.yml:2:8: dev\.api must be a mapping/],
      ['dev:\n  api:\n    forward: [{localPort: 1, port: 2}]\n', /dev\.api\.forward\[0\]: unknown key "port": expected/],
    ];
    for (const [text, message] of cases) {
      const parsed = parse(text);
      expect(parsed.ok, text).toBe(false);
      if (!parsed.ok) expect(parsed.error.message, text).toMatch(message);
    }
  });
});
