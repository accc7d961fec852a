import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pipeDuplex } from './pipe-duplex.ts';

/** A connected pair of TCP sockets on 127.0.0.1 that allow half-close. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const dialled = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [[other]] = await Promise.all([accepted, once(dialled, 'connect')]);
  server.close();
  return [dialled, other];
}

const open: Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

/** client ⇄ [a ⇄ pipeDuplex ⇄ b] ⇄ service */
async function relay() {
  const [client, a] = await socketPair();
  const [b, service] = await socketPair();
  open.push(client, a, b, service);
  for (const s of [client, service]) s.on('error', () => {});
  return { client, service, ended: pipeDuplex(a, b), a, b };
}

function readAll(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return once(socket, 'end').then(() => Buffer.concat(chunks).toString());
}

describe('pipeDuplex', () => {
  it('carries a half-close through: the answer still arrives after the caller stopped sending', async () => {
    const { client, service, ended } = await relay();
    const request = readAll(service);
    client.end('question');
    expect(await request).toBe('question');
    const answer = readAll(client);
    service.end('answer');
    expect(await answer).toBe('answer');
    expect(await ended).toEqual({});
  });

  it('cuts the other side when one side is reset, and reports it without an unhandled error', async () => {
    const { service, ended, a } = await relay();
    const serviceCut = once(service, 'end');
    service.resume();
    a.destroy(new Error('connection reset'));
    expect((await ended).error?.message).toBe('connection reset');
    await serviceCut; // the far side of the other leg sees its connection go
  });
});
