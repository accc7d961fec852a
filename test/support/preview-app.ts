/**
 * A small dev server for preview tests, run inside a workspace with plain Node (the workspace has
 * no node_modules): an HTML page whose script opens a websocket back to the server it came from
 * (relative to the page, so it works under a path prefix and at an origin's root) and echoes,
 * a 50 MB download of seeded pseudo-random bytes, a redirect and a cookie. It prints
 * `listening <port> <pid>` once it listens on a port the kernel picked.
 */
export const PREVIEW_APP_SOURCE = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const BIG = 50 * 1024 * 1024;
function fill(buf, state) {
  for (let i = 0; i < buf.length; i++) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    buf[i] = state & 255;
  }
  return state;
}
const page = '<!doctype html><html><head><meta charset="utf-8"><title>preview app</title></head><body>' +
  '<h1 id="title">hello from the workspace</h1><p id="ws">connecting</p><p id="path"></p>' +
  '<script>' +
  'document.getElementById("path").textContent = location.pathname;' +
  'const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname.replace(/[^/]*$/, "") + "ws";' +
  'const socket = new WebSocket(url); window.appSocket = socket;' +
  'socket.onopen = () => socket.send("ping");' +
  'socket.onmessage = (e) => { document.getElementById("ws").textContent = "echo: " + e.data; };' +
  'socket.onclose = (e) => { document.getElementById("ws").dataset.closed = String(e.code); };' +
  '</script></body></html>';
const held = [];
const server = http.createServer((req, res) => {
  if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': ['app=1; Path=/', 'wharf_session=stolen; Path=/', 'wide=1; Domain=preview.test; Path=/'] });
    return res.end(page);
  }
  if (req.url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    let sent = 0;
    let state = 2463534242;
    const more = () => {
      while (sent < BIG) {
        const chunk = Buffer.allocUnsafe(Math.min(256 * 1024, BIG - sent));
        state = fill(chunk, state);
        sent += chunk.length;
        if (!res.write(chunk)) return res.once('drain', more);
      }
      res.end();
    };
    return more();
  }
  if (req.url === '/headers') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(req.headers));
  }
  if (req.url === '/go') {
    res.writeHead(302, { location: '/headers' });
    return res.end();
  }
  // A response that streams: its first line now, the rest only when /release is asked for. A
  // proxy that buffered whole responses would deliver nothing until then.
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    held.push(res);
    return;
  }
  if (req.url === '/release') {
    for (const waiting of held.splice(0)) waiting.end('last\n');
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('released');
  }
  if (req.url === '/upload' && req.method === 'POST') {
    let bytes = 0;
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ bytes })); });
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('no such page in the app\n');
});
// A websocket echo, by hand: the workspace has no ws package. Text frames up to 64 KiB.
server.on('upgrade', (req, socket) => {
  socket.on('error', () => {});
  if (!req.url.endsWith('/ws')) return socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + accept + '\r\n\r\n');
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const opcode = pending[0] & 15;
      let length = pending[1] & 127;
      let at = 2;
      if (length === 126) { length = pending.readUInt16BE(2); at = 4; }
      if (pending.length < at + 4 + length) return;
      const mask = pending.subarray(at, at + 4);
      const data = Buffer.from(pending.subarray(at + 4, at + 4 + length));
      for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
      pending = pending.subarray(at + 4 + length);
      if (opcode === 8) return socket.end(Buffer.from([0x88, 0]));
      if (opcode !== 1) continue;
      const header = data.length < 126 ? Buffer.from([0x81, data.length]) : Buffer.from([0x81, 126, data.length >> 8, data.length & 255]);
      socket.write(Buffer.concat([header, data]));
    }
  });
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => console.log('listening ' + server.address().port + ' ' + process.pid));
`;

/** The bytes of `/big`, as the app makes them (xorshift32 from its seed). */
export const BIG_BYTES = 50 * 1024 * 1024;

/** A position-sensitive checksum, the same in the page and in the test: (h * 31 + byte) mod 2^32. */
export function checksumBytes(bytes: Uint8Array, h = 0): number {
  for (let i = 0; i < bytes.length; i++) h = (Math.imul(h, 31) + bytes[i]) >>> 0;
  return h;
}

/** The checksum `/big` must arrive with. */
export function expectedBigChecksum(): number {
  const buf = new Uint8Array(BIG_BYTES);
  let state = 2463534242;
  for (let i = 0; i < buf.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    buf[i] = state & 255;
  }
  return checksumBytes(buf);
}
