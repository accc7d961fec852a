import { loadCliConfig, readProcessContext } from '../config/index.ts';
import { COMMANDS } from './commands.ts';
import { tuneGarbageCollection } from './gc-tuning.ts';
import { createCliContext, runCli } from './run-cli.ts';

/** Entry of the `wharf` helper (bin/wharf.js in a checkout; dist/wharf.cjs, wharf.mjs and wharf-linux-x64 as downloads). */
async function main(): Promise<number> {
  tuneGarbageCollection();
  const config = loadCliConfig(readProcessContext());
  const ctx = createCliContext(config, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  return runCli(COMMANDS, ctx);
}

function exitAfterFlush(code: number): void {
  // Exit explicitly: an open stdin or tunnel must not keep the helper alive after the command.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

main().then(exitAfterFlush, (err: Error) => {
  process.stderr.write(`wharf: unexpected error: ${err.stack ?? err.message}\n`);
  exitAfterFlush(1);
});
