import { loadServerConfig, readProcessContext } from './config/index.ts';
import { tuneServerGarbageCollection } from './gc-tuning.ts';
import { startServer } from './main.ts';

/** `npm start`: run the control server until SIGINT/SIGTERM. */
async function serveForever(): Promise<void> {
  tuneServerGarbageCollection();
  const ctx = readProcessContext();
  const keepAgents = ctx.argv.includes('--keep-agents');
  const config = loadServerConfig({ ...ctx, argv: ctx.argv.filter((a) => a !== '--keep-agents') });
  const running = await startServer(config);
  process.stdout.write(`\nwharf is running at ${running.url}\nOpen this URL to sign in:\n\n  ${running.loginUrl}\n\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.close({ keepAgents }).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

serveForever().catch((err: Error) => {
  process.stderr.write(`wharf: ${err.message}\n`);
  process.exit(1);
});
