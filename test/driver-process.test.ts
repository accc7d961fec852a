import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { runDriverContract } from './driver-contract.ts';

/** Every path under `dir` with a component named `id` (its folder, its socket folder, ...). */
async function pathsNamed(dir: string, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true }).catch(() => [] as string[])) {
    if (String(entry).split('/').includes(id)) out.push(join(dir, String(entry)));
  }
  return out;
}

/** Processes whose command line names the workspace's own folder (its agent, the agent's children). */
function processesOf(dataDir: string, id: string): string[] {
  const needle = join(dataDir, 'workspaces', id);
  return readdirSync('/proc').flatMap((pid) => {
    if (!/^\d+$/.test(pid)) return [];
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      return cmdline.includes(needle) ? [`process ${pid}: ${cmdline.slice(0, 120)}`] : [];
    } catch {
      return [];
    }
  });
}

// The driver as the server wires it (agent command and flags included), without a sandbox so
// the agent's pid is the same inside the workspace as outside.
runDriverContract('process', {
  createDriver: (dataDir) =>
    createConfiguredDriver(loadServerConfig({ argv: ['--data-dir', dataDir, '--sandbox', 'none'], env: {} }), () => {}),
  async findLeftovers(dataDir, id) {
    const files = await pathsNamed(dataDir, id);
    const socketDir = join(dataDir, 'run', id);
    return [...files, ...(existsSync(socketDir) && !files.includes(socketDir) ? [socketDir] : []), ...processesOf(dataDir, id)];
  },
});
