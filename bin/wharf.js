#!/usr/bin/env node
// The `wharf` command in a checkout and in the server image (its entrypoint): runs the TypeScript
// entries through tsx. `wharf serve [flags]` is the control server (what `npm start -- [flags]`
// runs, without building first); any other command is the helper (server/cli). Both are resolved
// relative to this file, so it works from any working directory and through npm's bin link.
import { register } from 'tsx/esm/api';

register();
if (process.argv[2] === 'serve') {
  // The server reads its flags from process.argv after the script: drop the command's name.
  process.argv.splice(2, 1);
  await import(new URL('../server/serve.ts', import.meta.url).href);
} else {
  await import(new URL('../server/cli/main.ts', import.meta.url).href);
}
