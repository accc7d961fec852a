import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/**
 * vitest globalSetup of the integration tests: the servers they start run agents from the built
 * bundle (dist/agent) and serve the built helper (dist/wharf.cjs, wharf.mjs, install.sh and the
 * executable wharf-linux-x64), so they are built first when missing or older than the sources —
 * once per run, never inside a request. Cheap when fresh.
 */
export default function buildArtifacts(): void {
  try {
    const out = execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--if-stale', 'agent', 'helper', 'executable'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (!/agent is up to date[\s\S]*helper is up to date[\s\S]*executable is up to date/.test(out)) process.stderr.write(out);
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`building the agent and helper bundles failed (node scripts/build.mjs --if-stale agent helper executable):\n${stdout ?? ''}${stderr ?? ''}`);
  }
}
