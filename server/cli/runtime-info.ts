import { createRequire } from 'node:module';
import sshCrypto from 'ssh2/lib/protocol/crypto.js';

/**
 * What this helper runs on, for `wharf --version --verbose`: which Node, whether it is the single
 * executable, and whether SSH's ciphers are ssh2's native binding (the executable carries it) or
 * Node's crypto (the `.mjs`/`.cjs` bundles, which cannot know the add-on ABI of the user's Node).
 * The cipher line is what a slow tunnel is first checked for.
 */
export function describeRuntime(): string[] {
  const single = isSingleExecutable();
  return [
    `node ${process.version} (${single ? 'built into this single executable' : process.execPath})`,
    `ssh ciphers: ${sshCrypto.bindingAvailable ? "native (ssh2's sshcrypto.node)" : "Node's crypto (ssh2 without its native add-on)"}`,
  ];
}

function isSingleExecutable(): boolean {
  try {
    // `node:sea` exists from Node 20.12 on; the helper bundles also run on older 20s.
    const sea = createRequire(import.meta.url)('node:sea') as typeof import('node:sea');
    return sea.isSea();
  } catch {
    return false;
  }
}
