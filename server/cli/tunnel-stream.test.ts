import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createTunnelStream } from './tunnel-stream.ts';

let closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers) close();
  closers = [];
});

/** A websocket server that records every message it receives, and a client stream to it. */
async function connected(clientOptions: WebSocket.ClientOptions = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  const messages: Buffer[] = [];
  wss.on('connection', (socket) => socket.on('message', (data: Buffer) => messages.push(Buffer.from(data))));
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false, ...clientOptions });
  await once(ws, 'open');
  closers.push(() => {
    ws.terminate();
    wss.close();
  });
  return { stream: createTunnelStream(ws), messages };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('createTunnelStream', () => {
  it('sends the pieces written in one tick as one message, in order', async () => {
    const { stream, messages } = await connected();
    stream.write(Buffer.from('len.'));
    stream.write(Buffer.from('ciphertext'));
    stream.write(Buffer.from('tag'));
    await until(() => messages.length >= 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(messages.map(String)).toEqual(['len.ciphertexttag']);
  });

  it('keeps writes of different ticks apart', async () => {
    const { stream, messages } = await connected();
    stream.write(Buffer.from('one'));
    await new Promise((r) => setTimeout(r, 10));
    stream.write(Buffer.from('two'));
    await until(() => messages.length >= 2);
    expect(messages.map(String)).toEqual(['one', 'two']);
  });

  it('splits a tick of many packets into messages of at most one packet, losing nothing', async () => {
    const { stream, messages } = await connected();
    const packets = Array.from({ length: 8 }, (_, i) => [Buffer.alloc(4, i), Buffer.alloc(32 * 1024 + 20, 100 + i), Buffer.alloc(16, 200 + i)]);
    for (const pieces of packets) for (const piece of pieces) stream.write(piece);
    const total = Buffer.concat(packets.flat());
    await until(() => messages.reduce((n, m) => n + m.length, 0) >= total.length);
    expect(messages.length).toBe(8);
    expect(Math.max(...messages.map((m) => m.length))).toBeLessThanOrEqual(36 * 1024);
    expect(Buffer.concat(messages).equals(total)).toBe(true);
  });

  it('carries the same bytes with an all-zero masking key (the tunnel sends its frames so)', async () => {
    const { stream, messages } = await connected({ generateMask: (mask) => void mask.fill(0) });
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    stream.write(data);
    await until(() => messages.length >= 1);
    expect(messages[0].equals(data)).toBe(true);
  });
});
