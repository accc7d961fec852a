import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Context } from 'hono';
import { CLOSE_CODES, WharfError, type DeployEvent, type DeployKind } from '../../common/index.ts';
import { readUploadHeader, UPLOAD_CONTENT_TYPE, validateUploadOptions, validateVariables } from '../../okteto/index.ts';
import type { AppEnv, RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';

/** A slow websocket reader is cut off beyond this; it reconnects and gets the replay. */
const MAX_BUFFERED_EVENT_BYTES = 8 * 1024 * 1024;
const MAX_UPLOAD_OPTIONS_BYTES = 1024 * 1024;
/**
 * How long a cancel request waits for the run to end: an aborted build or killed command ends
 * within a second or two, and the caller then gets the final state in the answer.
 */
const CANCEL_WAIT_MS = 15_000;

/**
 * Remote deploys (docs/deploy.md): start a deploy/destroy of a workspace, list and read past
 * runs, follow a run's events live, run a CLI-uploaded folder, and the runner's one-time
 * variables callback.
 */
export const registerDeployRoutes: RouteModule = (app, ws, deps) => {
  const { deploys } = deps;

  const start = (kind: DeployKind) => async (c: Context<AppEnv>) => {
    const body = await readJsonBody(c, { optional: true });
    if (body.remote !== undefined && typeof body.remote !== 'boolean') throw new WharfError('bad_request', '"remote" must be true or false');
    if (body.file !== undefined && typeof body.file !== 'string') throw new WharfError('bad_request', '"file" must be a path relative to the workspace');
    const variables = validateVariables(body.variables);
    if (!variables.ok) throw new WharfError('bad_request', variables.error);
    const run = await deploys.start(c.req.param('id') as string, { kind, remote: body.remote as boolean | undefined, variables: variables.value, file: body.file as string | undefined });
    return c.json({ id: run.id, kind: run.kind, status: run.status }, 202);
  };
  app.post('/api/workspaces/:id/deploys', start('deploy'));
  app.post('/api/workspaces/:id/destroys', start('destroy'));

  app.get('/api/workspaces/:id/deploys', async (c) => c.json({ deploys: await deploys.list(c.req.param('id')) }));
  app.get('/api/workspaces/:id/deploys/:runId', async (c) => c.json(await deploys.get(c.req.param('id'), c.req.param('runId'))));
  // Cancels the run (the history keeps it, ended as cancelled): 200 once it has ended, 202 if
  // it is still stopping when the wait is over.
  app.delete('/api/workspaces/:id/deploys/:runId', async (c) => {
    const run = await deploys.cancel(c.req.param('id'), c.req.param('runId'), CANCEL_WAIT_MS);
    return c.json(run, run.status === 'running' ? 202 : 200);
  });

  ws.add({
    pattern: '/api/workspaces/:id/deploys/:runId/events',
    handle: async (socket, ctx) => {
      let ready = false;
      const early: DeployEvent[] = [];
      const send = (event: DeployEvent) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > MAX_BUFFERED_EVENT_BYTES) {
          socket.close(CLOSE_CODES.unavailable, 'falling behind: reconnect to get the log replayed');
          return;
        }
        socket.send(JSON.stringify(event));
        if (event.type === 'done') socket.close(CLOSE_CODES.normal, 'run finished');
      };
      // Events emitted while the replay is being sent wait their turn, so order is kept.
      const subscription = await deploys.subscribe(ctx.params.id, ctx.params.runId, (event) => (ready ? send(event) : early.push(event)));
      socket.on('close', () => subscription.unsubscribe());
      // Followed on the workspace's run board, which went away before the run's end: the client
      // reconnects and gets the replay (or the stored run).
      void subscription.ended?.then(() => {
        if (socket.readyState === socket.OPEN) socket.close(CLOSE_CODES.unavailable, 'lost the run board: reconnect to follow the run');
      });
      socket.on('message', () => {});
      for (const event of subscription.replay) send(event);
      for (const event of early.splice(0)) send(event);
      ready = true;
      if (!subscription.live && socket.readyState === socket.OPEN) {
        // Stored as running but not running here: another replica runs it.
        if (subscription.replay.at(-1)?.type === 'done') socket.close(CLOSE_CODES.normal, 'run finished');
        else socket.close(CLOSE_CODES.unavailable, 'the run is running on another server replica; see the history when it ends');
      }
    },
  });

  /** The CLI's deploy of a local folder: options frame + tar in, NDJSON events out. */
  app.post('/api/deploys', async (c) => {
    const kind = c.req.query('kind') ?? 'deploy';
    if (!(c.req.header('content-type') ?? '').startsWith(UPLOAD_CONTENT_TYPE)) {
      throw new WharfError('bad_request', `the body must be a deploy upload (Content-Type: ${UPLOAD_CONTENT_TYPE}); use "wharf deploy"`);
    }
    const raw = c.req.raw.body;
    if (!raw) throw new WharfError('bad_request', 'the upload is empty');
    const body = Readable.fromWeb(raw as unknown as WebReadableStream<Uint8Array>);
    const header = await readUploadHeader(body, MAX_UPLOAD_OPTIONS_BYTES);
    if (!header.ok) throw new WharfError('bad_request', header.error);
    const options = validateUploadOptions(kind, header.value.options);
    if (!options.ok) {
      header.value.tar.destroy();
      throw new WharfError('bad_request', options.error);
    }
    const { run, subscribe, cancel } = deploys.startUpload(
      { kind: options.value.kind, remote: options.value.remote, variables: options.value.variables, file: options.value.file, manifest: options.value.manifest },
      header.value.tar,
    );
    const encoder = new TextEncoder();
    let unsubscribe = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let ready = false;
        let closed = false;
        const early: DeployEvent[] = [];
        const write = (event: DeployEvent) => {
          if (closed) return;
          controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`));
          if (event.type === 'done') {
            closed = true;
            controller.close();
          }
        };
        const subscription = subscribe((event) => (ready ? write(event) : early.push(event)));
        unsubscribe = subscription.unsubscribe;
        for (const event of subscription.replay) write(event);
        for (const event of early.splice(0)) write(event);
        ready = true;
      },
      cancel() {
        // The CLI went away: nobody will see the result, so stop the build.
        unsubscribe();
        cancel();
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-wharf-deploy-id': run.id } });
  });

  app.get('/api/deploy-settings', (c) => c.json(deploys.settings()));

  /**
   * The runner's single fetch of its variables. Authentication is the token in the path alone
   * (the app's authenticator recognises a live token); a used, expired or unknown token is 401.
   */
  app.get('/api/deploy-secrets/:token', (c) => {
    const script = deploys.consumeSecret(c.req.param('token'));
    if (script === undefined) throw new WharfError('unauthorized', 'unknown, used or expired deploy token');
    return c.text(script, 200, { 'cache-control': 'no-store' });
  });
};
