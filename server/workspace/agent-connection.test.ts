import { createServer, connect, type AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAgent, type AgentConnection } from './agent-connection.ts';
import { generateKeyPair } from '../common/index.ts';

describe('agent connection', () => {
  const host = generateKeyPair('host');
  const client = generateKeyPair('client');
  let server: ssh2.Server;
  let connection: AgentConnection;

  beforeAll(async () => {
    // An SSH server whose commands finish at once: exit status, EOF and close leave in the same
    // write as the exec confirmation, the case where an awaiting caller used to miss the status.
    server = new ssh2.Server({ hostKeys: [host.privateKey] }, (c) => {
      c.on('authentication', (ctx) => ctx.accept());
      c.on('ready', () =>
        c.on('session', (accept) => {
          const session = accept();
          session.on('exec', (acceptExec, _reject, info) => {
            const stream = acceptExec();
            stream.exit(Number(/\d+/.exec(info.command)?.[0] ?? 0));
            stream.end();
          });
        }),
      );
    });
    const tcp = createServer((socket) => server.injectSocket(socket));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const socket = connect((tcp.address() as AddressInfo).port, '127.0.0.1');
    connection = await connectAgent(socket, client.privateKey, host.publicKey, 5000);
    tcp.close();
  });
  afterAll(() => connection.close());

  it('reports the exit status of commands that end before the caller listens', async () => {
    const codes: Array<number | null> = [];
    for (let i = 0; i < 50; i++) codes.push((await connection.exec(`exit ${i % 7}`)).code);
    expect(codes).toEqual(Array.from({ length: 50 }, (_, i) => i % 7));

    const channel = await connection.execStream('exit 5');
    await new Promise((r) => setTimeout(r, 50)); // listen only well after the status came in
    const code = await new Promise((resolve) => {
      channel.on('exit', resolve);
      channel.resume();
    });
    expect(code).toBe(5);
  });
});
