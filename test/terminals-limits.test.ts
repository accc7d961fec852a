import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { createTerminal, TerminalClient } from './support/terminal-client.ts';

const WS = 'limits';
const LINK_CLIENTS = 3;
const TERMINAL_CLIENTS = 5;
const ADMIN_CLIENTS = 8;

async function share(server: TestServer, workspace: string, terminal: string, role: 'viewer' | 'editor' = 'viewer'): Promise<string> {
  const res = await server.api(`/api/workspaces/${workspace}/terminals/${terminal}/shares`, { method: 'POST', json: { role, expiresInSeconds: 600 } });
  if (res.status !== 201) throw new Error(`share: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

function openWithLink(server: TestServer, workspace: string, terminal: string, token: string): Promise<TerminalClient> {
  return TerminalClient.open(server, workspace, terminal, { query: `share=${token}`, headers: {} });
}

/** Opens clients until one is admitted: a slot freed by a closed client is released a moment later. */
async function openOnceAdmitted(open: () => Promise<TerminalClient>): Promise<TerminalClient> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = await open();
    if (client.messages[0]?.type === 'snapshot') return client;
    if (Date.now() > deadline) throw new Error(`still refused: ${JSON.stringify(client.closed)}`);
  }
}

function closeAll(clients: TerminalClient[]): void {
  for (const c of clients) c.close();
}

describe('limits on attached terminal clients', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      workspaces: [WS],
      argv: ['--terminal-link-clients', String(LINK_CLIENTS), '--terminal-clients', String(TERMINAL_CLIENTS), '--terminal-admin-clients', String(ADMIN_CLIENTS)],
    });
  });
  afterAll(() => server?.dispose());

  it('closes a share link\'s attaches past its limit with 4429, and the others keep working', async () => {
    const terminal = (await createTerminal(server, WS)).id;
    const token = await share(server, WS, terminal);
    const viewers: TerminalClient[] = [];
    for (let i = 0; i < LINK_CLIENTS; i++) viewers.push(await openWithLink(server, WS, terminal, token));
    for (const v of viewers) expect(v.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });

    const refused = await openWithLink(server, WS, terminal, token);
    expect(await refused.waitForClose(5000)).toEqual({ code: 4429, reason: `this share link already has ${LINK_CLIENTS} clients attached; close one of them first` });
    expect(refused.messages).toEqual([]);

    // The admitted ones still see the terminal live, and the owner is not counted against the link.
    const admin = await TerminalClient.open(server, WS, terminal);
    admin.type('echo STILL-$((6*7))\r');
    for (const v of viewers) await v.waitForText('STILL-42');
    expect(viewers.every((v) => v.closed === undefined)).toBe(true);

    // One of them leaves: its place can be taken again.
    viewers.pop()?.close();
    viewers.push(await openOnceAdmitted(() => openWithLink(server, WS, terminal, token)));
    closeAll([...viewers, admin]);
  });

  it('refuses a flood of attaches through one link while the workspace keeps answering', async () => {
    const terminal = (await createTerminal(server, WS)).id;
    const other = (await createTerminal(server, WS)).id;
    const token = await share(server, WS, terminal);
    const flood = await Promise.all(Array.from({ length: 200 }, () => openWithLink(server, WS, terminal, token)));
    await Promise.all(flood.map((c) => c.waitFor(() => c.closed !== undefined || c.messages.length > 0, 30_000, 'an answer')));
    const admitted = flood.filter((c) => c.messages[0]?.type === 'snapshot');
    const refused = flood.filter((c) => c.closed?.code === 4429);
    expect(admitted.length).toBe(LINK_CLIENTS);
    expect(refused.length).toBe(flood.length - LINK_CLIENTS);

    // Everything else of the workspace answers: the files API and another terminal.
    const files = await server.api(`/api/workspaces/${WS}/files/`);
    expect(files.status).toBe(200);
    const elsewhere = await TerminalClient.open(server, WS, other);
    elsewhere.type('echo ELSEWHERE-OK\r');
    await elsewhere.waitForText('ELSEWHERE-OK');
    // And the admitted viewers still follow their terminal.
    const admin = await TerminalClient.open(server, WS, terminal);
    admin.type('echo AFTER-THE-FLOOD\r');
    for (const v of admitted) await v.waitForText('AFTER-THE-FLOOD');
    closeAll([...admitted, elsewhere, admin]);
  });

  it('counts a terminal\'s clients across replicas and links, and never locks the owner out', async () => {
    const terminal = (await createTerminal(server, WS)).id;
    const replica = await startTestServer({ dataDir: server.dataDir });
    const clients: TerminalClient[] = [];
    try {
      const [a, b, c] = [await share(server, WS, terminal), await share(server, WS, terminal), await share(server, WS, terminal)];
      // Three through one replica, two through the other: the terminal is full (5).
      for (let i = 0; i < 3; i++) clients.push(await openWithLink(server, WS, terminal, a));
      for (let i = 0; i < 2; i++) clients.push(await openWithLink(replica, WS, terminal, b));
      for (const client of clients) expect(client.messages[0]).toMatchObject({ type: 'snapshot' });
      for (const target of [server, replica]) {
        const refused = await openWithLink(target, WS, terminal, c);
        expect(await refused.waitForClose(5000)).toEqual({ code: 4429, reason: `this terminal already has ${TERMINAL_CLIENTS} clients attached; try again later` });
      }
      // The link's own limit holds across replicas too: a has 3 on the first one.
      const overLink = await openWithLink(replica, WS, terminal, a);
      expect((await overLink.waitForClose(5000)).code).toBe(4429);
      // The owner still attaches to a full terminal.
      const owner = await TerminalClient.open(replica, WS, terminal);
      expect(owner.messages[0]).toMatchObject({ type: 'snapshot', role: 'editor' });
      clients.push(owner);
    } finally {
      closeAll(clients);
      await replica.close({ keepAgents: true });
    }
  });

  it('limits the admin\'s own clients in a workspace, with a higher limit', async () => {
    await createWorkspace(server, 'admin-limits');
    const first = (await createTerminal(server, 'admin-limits')).id;
    const second = (await createTerminal(server, 'admin-limits')).id;
    const clients: TerminalClient[] = [];
    for (let i = 0; i < ADMIN_CLIENTS; i++) clients.push(await TerminalClient.open(server, 'admin-limits', i % 2 ? first : second));
    for (const client of clients) expect(client.messages[0]).toMatchObject({ type: 'snapshot' });
    const refused = await TerminalClient.open(server, 'admin-limits', first);
    expect(await refused.waitForClose(5000)).toEqual({ code: 4429, reason: `${ADMIN_CLIENTS} terminal clients are already attached to this workspace as the admin; close some first` });
    // Other workspaces have their own count.
    const elsewhere = await TerminalClient.open(server, WS, (await createTerminal(server, WS)).id);
    expect(elsewhere.messages[0]).toMatchObject({ type: 'snapshot' });
    closeAll([...clients, elsewhere]);
  });
});
