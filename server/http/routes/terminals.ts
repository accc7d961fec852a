import type { Context } from 'hono';
import { CLOSE_CODES, createAckWindow, WharfError } from '../../common/index.ts';
import { TERMINAL_PROTOCOL_BOUNDS, type CreateTerminalRequest, type FanoutSink, type TerminalRole } from '../../terminal/index.ts';
import type { AppEnv, RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';
import { closeCodeOf, closeReasonOf } from '../error-mapping.ts';
import { nameShareCookie } from '../share-auth.ts';

const BASE = '/api/workspaces/:id/terminals';
const { maxDimension: MAX_DIMENSION, maxControlMessageBytes: MAX_TEXT_MESSAGE } = TERMINAL_PROTOCOL_BOUNDS;

function requireAdmin(c: Context<AppEnv>): void {
  if (c.get('principal')?.kind !== 'admin') throw new WharfError('forbidden', 'a share link only opens its own terminal');
}

function isDimension(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_DIMENSION;
}

/** Checks the shape of a create request; the agent checks paths and commands in the workspace. */
function parseCreateBody(body: Record<string, unknown>): CreateTerminalRequest {
  const request: CreateTerminalRequest = {};
  if (body.command !== undefined) {
    if (typeof body.command !== 'string' || !body.command) throw new WharfError('bad_request', '"command" must be a non-empty string');
    request.command = body.command;
  }
  if (body.args !== undefined) {
    if (!Array.isArray(body.args) || body.args.some((a) => typeof a !== 'string')) throw new WharfError('bad_request', '"args" must be an array of strings');
    request.args = body.args as string[];
  }
  if (body.cwd !== undefined) {
    if (typeof body.cwd !== 'string') throw new WharfError('bad_request', '"cwd" must be a path inside the workspace');
    request.cwd = body.cwd;
  }
  if (body.env !== undefined) {
    if (!body.env || typeof body.env !== 'object' || Array.isArray(body.env) || Object.values(body.env).some((v) => typeof v !== 'string')) {
      throw new WharfError('bad_request', '"env" must be an object of strings');
    }
    request.env = body.env as Record<string, string>;
  }
  for (const key of ['cols', 'rows'] as const) {
    if (body[key] === undefined) continue;
    if (!isDimension(body[key])) throw new WharfError('bad_request', `"${key}" must be an integer from 1 to ${MAX_DIMENSION}`);
    request[key] = body[key];
  }
  return request;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function renderSharePage(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>
<style>body{font:15px system-ui;background:#1e1e1e;color:#ddd;display:grid;place-items:center;height:100vh;margin:0}</style></head><body>${body}</body></html>`;
}

export const registerTerminalRoutes: RouteModule = (app, ws, deps) => {
  const { terminals } = deps;

  app.get(BASE, async (c) => {
    requireAdmin(c);
    return c.json({ terminals: await terminals.list(c.req.param('id')) });
  });

  app.post(BASE, async (c) => {
    requireAdmin(c);
    const request = parseCreateBody(await readJsonBody(c));
    return c.json(await terminals.create(c.req.param('id'), request), 201);
  });

  /** A terminal's metadata; the one route besides attach that its share link may read. */
  app.get(`${BASE}/:tid`, async (c) => {
    const principal = c.get('principal');
    const info = await terminals.get(c.req.param('id'), c.req.param('tid'));
    if (principal.kind === 'share') return c.json({ ...info, share: { role: principal.role, expiresAt: new Date(principal.exp).toISOString() } });
    return c.json(info);
  });

  app.delete(`${BASE}/:tid`, async (c) => {
    requireAdmin(c);
    await terminals.kill(c.req.param('id'), c.req.param('tid'));
    return c.body(null, 204);
  });

  app.post(`${BASE}/:tid/shares`, async (c) => {
    requireAdmin(c);
    const body = await readJsonBody(c);
    const workspace = c.req.param('id');
    const terminal = c.req.param('tid');
    await terminals.get(workspace, terminal);
    const created = await terminals.shares.create(workspace, terminal, { role: body.role, expiresInSeconds: body.expiresInSeconds });
    if (!created.ok) throw new WharfError(created.error.code, created.error.message);
    const { record, token } = created.value;
    return c.json({ id: record.id, url: `${deps.site.publicUrl()}/s/${token}`, token, role: record.role, expiresAt: record.expiresAt }, 201);
  });

  app.get(`${BASE}/:tid/shares`, async (c) => {
    requireAdmin(c);
    // Never from the Host header: a request naming another host must not get links pointing there.
    const origin = deps.site.publicUrl();
    const list = await terminals.shares.list(c.req.param('id'), c.req.param('tid'));
    return c.json({ shares: list.map((s) => ({ ...s, url: `${origin}/s/${s.token}` })) });
  });

  app.delete(`${BASE}/:tid/shares/:shareId`, async (c) => {
    requireAdmin(c);
    const shareId = c.req.param('shareId');
    if (!(await terminals.revokeShare(c.req.param('id'), c.req.param('tid'), shareId))) {
      throw new WharfError('not_found', `no live share link "${shareId}" for this terminal`);
    }
    return c.body(null, 204);
  });

  /**
   * The link itself: checks the token, stores it in an HttpOnly cookie and sends the browser to
   * the terminal's page. A navigation that arrives from another site gets a tiny page that moves
   * on by itself, because browsers withhold a SameSite=Strict cookie on a cross-site redirect.
   */
  app.get('/s/:token', async (c) => {
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-store');
    const verified = await terminals.shares.verify(c.req.param('token'));
    if (!verified.ok) {
      const status = verified.error.code === 'revoked' ? 403 : 401;
      if ((c.req.header('accept') ?? '').includes('text/html')) {
        return c.html(renderSharePage('wharf — share link', `<p>${escapeHtml(verified.error.message)}. Ask for a new link.</p>`), status);
      }
      return c.json({ error: { code: status === 403 ? 'forbidden' : 'unauthorized', message: verified.error.message } }, status);
    }
    const share = verified.value;
    const maxAge = Math.max(1, Math.floor((share.exp - Date.now()) / 1000));
    const secure = deps.site.publicUrl().startsWith('https:') ? '; Secure' : '';
    c.header('Set-Cookie', `${nameShareCookie(share.shareId)}=${c.req.param('token')}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`);
    const target = `/share/${encodeURIComponent(share.workspace)}/${encodeURIComponent(share.terminal)}`;
    if (c.req.header('sec-fetch-site') === 'cross-site') {
      return c.html(renderSharePage('wharf — shared terminal', `<meta http-equiv="refresh" content="0;url=${escapeHtml(target)}"><p><a href="${escapeHtml(target)}">Open the shared terminal</a></p>`));
    }
    return c.redirect(target, 303);
  });

  ws.add({
    pattern: `${BASE}/:tid/attach`,
    allowShare: (principal, params) => principal.workspace === params.id && principal.resource === params.tid,
    handle: (socket, ctx) => {
      const workspace = ctx.params.id;
      const terminal = ctx.params.tid;
      const principal = ctx.principal;
      const role: TerminalRole = principal.kind === 'share' ? principal.role : ctx.url.searchParams.get('role') === 'viewer' ? 'viewer' : 'editor';
      const colsParam = ctx.url.searchParams.get('cols');
      const rowsParam = ctx.url.searchParams.get('rows');
      let size: { cols: number; rows: number } | undefined;
      if (colsParam !== null || rowsParam !== null) {
        const cols = Number(colsParam);
        const rows = Number(rowsParam);
        if (!isDimension(cols) || !isDimension(rows)) throw new WharfError('bad_request', `"cols" and "rows" must both be integers from 1 to ${MAX_DIMENSION}`);
        size = { cols, rows };
      }

      // A client that acknowledges what it rendered (the web UI) is measured by that, not by the socket.
      const flow = ctx.url.searchParams.get('flow');
      if (flow !== null && flow !== 'ack') throw new WharfError('bad_request', '"flow" can only be "ack" (acknowledge rendered output) or left out');
      const acks = flow === 'ack' ? createAckWindow() : undefined;
      const sendJson = (message: Record<string, unknown>, done?: () => void) => socket.send(JSON.stringify(message), () => done?.());
      const finishWithExit = (code: number | null, signal: string | null) => {
        sendJson({ type: 'exit', code, signal });
        socket.close(CLOSE_CODES.normal, 'the terminal exited');
      };
      const sink: FanoutSink = {
        snapshot(snapshot, kind, done) {
          const { data, cols, rows } = snapshot;
          sendJson(kind === 'snapshot' ? { type: 'snapshot', data, cols, rows, role } : { type: 'resync', data, cols, rows }, done);
          if (snapshot.exited) finishWithExit(snapshot.exited.code, snapshot.exited.signal);
        },
        output(data, done) {
          if (!acks) return socket.send(data, { binary: true }, () => done());
          acks.track(data.length, done);
          socket.send(data, { binary: true });
        },
        event(event, done) {
          if (event.type === 'exit') {
            done();
            return finishWithExit(event.code, event.signal);
          }
          sendJson(event, done);
        },
      };

      const attachment = terminals.attach(workspace, terminal, {
        role,
        // The agent counts clients per link and of the admin, across every replica.
        principal: principal.kind === 'share' ? { kind: 'share', id: principal.shareId } : { kind: 'admin' },
        size,
        sink,
        close: (error, reason) => {
          if (error) socket.close(closeCodeOf(error), closeReasonOf(error));
          else socket.close(CLOSE_CODES.normal, reason.slice(0, 120));
        },
      });
      const untrack =
        principal.kind === 'share'
          ? terminals.trackShareClient(
              { workspace, terminal, role: principal.role, shareId: principal.shareId, exp: principal.exp },
              { close: (error) => socket.close(closeCodeOf(error), closeReasonOf(error)) },
            )
          : undefined;

      socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) {
          if (role !== 'editor') return sendJson({ type: 'error', message: 'viewers cannot type' });
          if (!attachment.input(data)) {
            socket.pause();
            void attachment.inputDrained().then(() => socket.resume());
          }
          return;
        }
        if (data.length > MAX_TEXT_MESSAGE) return sendJson({ type: 'error', message: `control messages are limited to ${MAX_TEXT_MESSAGE} bytes; send input as binary frames` });
        let message: { type?: unknown; cols?: unknown; rows?: unknown; bytes?: unknown };
        try {
          message = JSON.parse(data.toString('utf8')) as typeof message;
        } catch {
          return sendJson({ type: 'error', message: 'text messages must be JSON, e.g. {"type":"resize","cols":80,"rows":24}; send input as binary frames' });
        }
        if (message?.type === 'ack') {
          if (!acks) return sendJson({ type: 'error', message: 'acknowledgements need "flow=ack" on the attach URL' });
          const acked = acks.ack(message.bytes);
          if (!acked.ok) sendJson({ type: 'error', message: `ack: ${acked.error}` });
          return;
        }
        if (message?.type !== 'resize') return sendJson({ type: 'error', message: `unknown message type ${JSON.stringify(message?.type ?? null)}` });
        if (!isDimension(message.cols) || !isDimension(message.rows)) {
          return sendJson({ type: 'error', message: `resize needs integer "cols" and "rows" from 1 to ${MAX_DIMENSION}` });
        }
        // A viewer's size never changes the pty.
        if (role === 'editor') attachment.resize(message.cols, message.rows);
      });
      socket.on('close', () => {
        acks?.release();
        attachment.detach();
        untrack?.();
      });
    },
  });
};
