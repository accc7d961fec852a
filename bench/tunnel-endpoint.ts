/**
 * The far end of every path the tunnel benchmark measures, in its own process so that neither
 * the tunnels nor the measuring client share its event loop:
 *
 *   node --import tsx bench/tunnel-endpoint.ts      (prints "endpoint sink <port> echo <port>")
 *
 * - sink: a connection starts with an 8-byte big-endian length N, then N bytes; once they have
 *   all arrived the sink answers one byte ("k") and keeps the connection open. A length prefix,
 *   not a half-close, marks the end, so every path is measured on the same protocol whatever it
 *   does with EOF. A connection that sends nothing (a readiness probe) is simply closed.
 * - echo: every byte back, as it comes (for 64-byte round trips and for holding connections open).
 */
import { createServer, type AddressInfo, type Server } from 'node:net';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const sink = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let header: Buffer | undefined = Buffer.alloc(0);
  let remaining = 0;
  socket.on('data', (chunk: Buffer) => {
    if (header) {
      header = Buffer.concat([header, chunk]);
      if (header.length < 8) return;
      remaining = Number(header.readBigUInt64BE(0)) - (header.length - 8);
      header = undefined;
    } else remaining -= chunk.length;
    if (remaining === 0) socket.write('k');
    else if (remaining < 0) socket.destroy(new Error('more bytes than announced'));
  });
});

const echo = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.pipe(socket);
});

const [sinkPort, echoPort] = await Promise.all([listen(sink), listen(echo)]);
console.log(`endpoint sink ${sinkPort} echo ${echoPort}`);
