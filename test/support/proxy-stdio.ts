/**
 * A minimal OpenSSH ProxyCommand for tests: joins stdio to a workspace's websocket SSH tunnel.
 * Usage: tsx test/support/proxy-stdio.ts <ws-url> <token-file>
 * (the token is read from a file so it does not show in the process list).
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const [url, tokenFile] = process.argv.slice(2);
if (!url || !tokenFile) {
  process.stderr.write('usage: proxy-stdio <ws-url> <token-file>\n');
  process.exit(2);
}
const token = readFileSync(tokenFile, 'utf8').trim();
const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false });

ws.on('open', () => {
  process.stdin.on('data', (chunk: Buffer) => ws.send(chunk, { binary: true }));
  process.stdin.on('end', () => ws.close(1000));
});
ws.on('message', (data: Buffer) => {
  if (!process.stdout.write(data)) {
    ws.pause();
    process.stdout.once('drain', () => ws.resume());
  }
});
ws.on('close', () => process.exit(0));
ws.on('error', (err) => {
  process.stderr.write(`proxy-stdio: ${err.message}\n`);
  process.exit(1);
});
