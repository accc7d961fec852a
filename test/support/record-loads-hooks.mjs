// Module hooks (run on Node's hooks thread) that note every module URL an entry point resolves,
// one per line, in the file named at registration. Used by test/entry-points.test.ts.
import { appendFileSync } from 'node:fs';

let out;

export async function initialize(data) {
  out = data.out;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  if (out && result.url.startsWith('file:')) appendFileSync(out, `${result.url}\n`);
  return result;
}
