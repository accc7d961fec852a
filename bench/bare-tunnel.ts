/**
 * The bare transport of `wharf up`, as a reference for the tunnel benchmark: the same three
 * processes and the same libraries, and nothing of wharf — no API calls, no keys or grants, no
 * rules, reconnection or statistics:
 *
 *   agent   an ssh2 server on a unix socket: direct-tcpip dials its target, tcpip-forward listens
 *           on 127.0.0.1 and opens a forwarded-tcpip channel per connection (wharf's agent)
 *   relay   a websocket server; each websocket is relayed as raw bytes to a new connection to the
 *           agent's socket (wharf's control server, /api/workspaces/:id/ssh)
 *   client  an ssh2 client over a websocket to the relay: listens for the forward rules, asks for
 *           the reverse ones and dials their local ports (the helper, `wharf up`)
 *
 *   node --import tsx bench/bare-tunnel.ts agent <socket>
 *   node --import tsx bench/bare-tunnel.ts relay <socket>            (prints the port it listens on)
 *   node --import tsx bench/bare-tunnel.ts client <relay port> <rules as JSON>
 *
 * Rules: {"forward":[{"localPort":1,"host":"127.0.0.1","remotePort":2}],"reverse":[{"remotePort":3,"localPort":4}]}.
 * Every connection is joined with plain `pipe` both ways. What this reaches is what any design of
 * this shape (ssh2 ⇄ websocket ⇄ relay ⇄ ssh2, three Node processes) reaches on the machine.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import WebSocket, { createWebSocketStream, WebSocketServer } from 'ws';

/** As wharf's server route: stop reading the agent while a websocket has this much unsent. */
const HIGH_WATER = 4 * 1024 * 1024;

type Rules = { forward: { localPort: number; host: string; remotePort: number }[]; reverse: { remotePort: number; localPort: number }[] };

function join(a: Duplex, b: Duplex): void {
  const end = () => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', end);
    s.on('close', end);
  }
  a.pipe(b);
  b.pipe(a);
}

function serveAgent(socketPath: string): void {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => {});
    conn.on('ready', () => {
      conn.on('tcpip', (accept, reject, info) => {
        const socket = connect({ host: info.destIP, port: info.destPort });
        socket.setNoDelay(true);
        socket.once('error', () => reject());
        socket.once('connect', () => join(accept(), socket));
      });
      conn.on('request', (accept, reject, name, info) => {
        if (name !== 'tcpip-forward') return reject?.();
        const { bindAddr, bindPort } = info as ssh2.TcpipBindInfo;
        const listener = createServer((socket) => {
          socket.setNoDelay(true);
          socket.on('error', () => {});
          conn.forwardOut(bindAddr, bindPort, socket.remoteAddress ?? '127.0.0.1', socket.remotePort ?? 0, (err, channel) => {
            if (err) return socket.destroy();
            join(channel, socket);
          });
        });
        listener.once('error', () => reject?.());
        listener.listen(bindPort, '127.0.0.1', () => accept?.(bindPort));
        conn.once('close', () => listener.close());
      });
    });
  });
  server.listen(socketPath, () => console.log('bare agent ready'));
}

function serveRelay(socketPath: string): void {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false }, () => {
    console.log(`bare relay listening on ${(wss.address() as { port: number }).port}`);
  });
  wss.on('connection', (ws) => {
    const agent: Socket = connect(socketPath);
    agent.on('error', () => ws.terminate());
    ws.on('message', (data: Buffer) => {
      if (!agent.write(data)) ws.pause();
    });
    agent.on('drain', () => ws.resume());
    let paused = false;
    agent.on('data', (chunk: Buffer) => {
      ws.send(chunk, () => {
        if (paused && ws.bufferedAmount < HIGH_WATER / 4) {
          paused = false;
          agent.resume();
        }
      });
      if (!paused && ws.bufferedAmount > HIGH_WATER) {
        paused = true;
        agent.pause();
      }
    });
    agent.on('close', () => ws.close());
    ws.on('close', () => agent.destroy());
  });
}

function serveClient(relayPort: number, rules: Rules): void {
  const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/`, { perMessageDeflate: false });
  const client = new ssh2.Client();
  client.on('error', (err) => {
    console.error(err.message);
    process.exit(1);
  });
  client.on('tcp connection', (info, accept, reject) => {
    const rule = rules.reverse.find((r) => r.remotePort === info.destPort);
    if (!rule) return reject();
    const socket = connect({ host: '127.0.0.1', port: rule.localPort });
    socket.setNoDelay(true);
    socket.once('error', () => reject());
    socket.once('connect', () => join(accept(), socket));
  });
  client.on('ready', async () => {
    for (const rule of rules.forward) {
      const listener = createServer((socket) => {
        socket.setNoDelay(true);
        socket.on('error', () => {});
        client.forwardOut('127.0.0.1', 0, rule.host, rule.remotePort, (err, channel) => {
          if (err) return socket.destroy();
          join(channel, socket);
        });
      });
      await new Promise<void>((resolve) => listener.listen(rule.localPort, '127.0.0.1', () => resolve()));
    }
    for (const rule of rules.reverse) {
      await new Promise<void>((resolve, reject) => client.forwardIn('127.0.0.1', rule.remotePort, (err) => (err ? reject(err) : resolve())));
    }
    console.log('bare client ready');
  });
  ws.once('open', () => client.connect({ sock: createWebSocketStream(ws), username: 'bench' }));
  ws.once('error', (err) => {
    console.error(err.message);
    process.exit(1);
  });
}

// Exits normally when stopped, so `node --cpu-prof` can write its profile.
process.once('SIGTERM', () => process.exit(0));
const [role, arg, rules] = process.argv.slice(2);
if (role === 'agent' && arg) serveAgent(arg);
else if (role === 'relay' && arg) serveRelay(arg);
else if (role === 'client' && arg && rules) serveClient(Number(arg), JSON.parse(rules) as Rules);
else {
  console.error('usage: bare-tunnel.ts agent <socket> | relay <socket> | client <relay port> <rules as JSON>');
  process.exit(2);
}
