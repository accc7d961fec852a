/**
 * The bare transport of wharf's architecture, as a reference for the terminal benchmark: an
 * "agent" process holding the pty behind an ssh2 server on a unix socket, and a "server" process
 * that relays one SSH channel to websocket clients. Nothing else: no headless screen, no frames,
 * no authentication, no per-client queues or resyncs (a slow client holds everyone back). What it
 * reaches is what any design of this shape can reach on the machine, before doing wharf's work.
 *
 *   node --import tsx bench/bare-relay.ts agent <socket> <command>
 *   node --import tsx bench/bare-relay.ts server <socket>       (prints the port it listens on)
 *
 * Clients connect to ws://127.0.0.1:<port>/<group>/<count>: once <count> clients of one <group>
 * are connected, the server opens one channel (a fresh pty) and sends its output to all of them;
 * the first client's messages are the pty's input.
 */
import { connect } from 'node:net';
import pty from 'node-pty';
import ssh2 from 'ssh2';
import { WebSocketServer, type WebSocket } from 'ws';

/** As wharf's agent and server: pause the source while a websocket has this much unsent. */
const HIGH_WATER = 1024 * 1024;

function serveAgent(socketPath: string, command: string): void {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => {});
    conn.on('ready', () =>
      conn.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const channel = acceptExec();
          const term = pty.spawn('/bin/sh', ['-c', command], { cols: 100, rows: 30, encoding: null });
          term.onData((chunk) => {
            if (channel.write(chunk)) return;
            term.pause();
            channel.once('drain', () => term.resume());
          });
          channel.on('data', (data: Buffer) => term.write(data as unknown as string));
          channel.on('close', () => term.kill());
        });
      }),
    );
  });
  server.listen(socketPath, () => console.log('bare agent ready'));
}

function serveRelay(socketPath: string): void {
  const client = new ssh2.Client();
  const groups = new Map<string, WebSocket[]>();
  client.on('ready', () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }, () => {
      console.log(`bare relay listening on ${(wss.address() as { port: number }).port}`);
    });
    wss.on('connection', (ws, req) => {
      const [, group = '', count = '1'] = (req.url ?? '').split('/');
      const members = [...(groups.get(group) ?? []), ws];
      if (members.length < Number(count)) return void groups.set(group, members);
      groups.delete(group);
      client.exec('pty', (err, channel) => {
        if (err) return members.forEach((m) => m.close(1011, err.message));
        let paused = false;
        const resumeWhenDrained = () => {
          if (members.some((m) => m.bufferedAmount > HIGH_WATER / 2)) return void setTimeout(resumeWhenDrained, 1);
          paused = false;
          channel.resume();
        };
        channel.on('data', (data: Buffer) => {
          for (const m of members) m.send(data, { binary: true });
          if (paused || !members.some((m) => m.bufferedAmount > HIGH_WATER)) return;
          paused = true;
          channel.pause();
          setTimeout(resumeWhenDrained, 1);
        });
        members[0].on('message', (data: Buffer) => channel.write(data));
        for (const m of members) m.on('close', () => channel.close());
      });
    });
  });
  client.on('error', (err) => {
    console.error(err.message);
    process.exit(1);
  });
  client.connect({ sock: connect(socketPath), username: 'bench' });
}

const [role, socketPath, command] = process.argv.slice(2);
if (role === 'agent' && socketPath && command) serveAgent(socketPath, command);
else if (role === 'server' && socketPath) serveRelay(socketPath);
else {
  console.error('usage: bare-relay.ts agent <socket> <command> | server <socket>');
  process.exit(2);
}
