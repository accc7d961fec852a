import { fail, ok, type Result } from './result.ts';

/**
 * Limits of one container workspace: CPUs (fractional), memory and disk in bytes, and a cap on
 * its processes. Absent means the engine's own default (no limit). Shared by the server's config
 * (defaults), the API (a create request's `resources`) and the container driver.
 */
export type WorkspaceResources = { cpus?: number; memory?: number; pids?: number; disk?: number };

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `2g`, `512m`, `1.5GiB`, `1073741824` (k/m/g/t are binary units, as Docker reads them) → bytes. */
export function parseResourceBytes(raw: unknown, what: string): Result<number, string> {
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim().toLowerCase() : '';
  const match = /^(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?$/.exec(text);
  const bytes = match ? Math.round(Number(match[1]) * (UNITS[match[2] ?? ''] ?? 1)) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) return fail(`${what}: expected a size like 512m, 2g or a number of bytes (got ${JSON.stringify(raw)})`);
  return ok(bytes);
}

/**
 * Reads `{ cpus, memory, pids, disk }` (numbers, or strings as on the command line). Memory
 * below 6 MiB is refused: no engine starts a container with less (Docker's own minimum).
 */
export function parseWorkspaceResources(raw: unknown, what = 'resources'): Result<WorkspaceResources, string> {
  if (raw === undefined || raw === null) return ok({});
  if (typeof raw !== 'object' || Array.isArray(raw)) return fail(`"${what}" must be an object like {"cpus": 2, "memory": "2g", "pids": 512, "disk": "10g"}`);
  const input = raw as Record<string, unknown>;
  const unknown = Object.keys(input).filter((key) => !['cpus', 'memory', 'pids', 'disk'].includes(key));
  if (unknown.length > 0) return fail(`"${what}": unknown limit ${unknown.map((k) => `"${k}"`).join(', ')} (cpus, memory, pids and disk are known)`);
  const out: WorkspaceResources = {};
  if (input.cpus !== undefined) {
    const cpus = typeof input.cpus === 'string' ? Number(input.cpus.trim()) : input.cpus;
    if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0 || cpus > 1024) return fail(`"${what}.cpus": expected a number of CPUs above 0, like 0.5 or 2 (got ${JSON.stringify(input.cpus)})`);
    out.cpus = cpus;
  }
  if (input.memory !== undefined) {
    const memory = parseResourceBytes(input.memory, `"${what}.memory"`);
    if (!memory.ok) return memory;
    if (memory.value < 6 * 1024 ** 2) return fail(`"${what}.memory": at least 6m is needed to start a workspace (got ${JSON.stringify(input.memory)})`);
    out.memory = memory.value;
  }
  if (input.pids !== undefined) {
    const pids = typeof input.pids === 'string' ? Number(input.pids.trim()) : input.pids;
    if (typeof pids !== 'number' || !Number.isSafeInteger(pids) || pids < 8) return fail(`"${what}.pids": expected a whole number of processes, at least 8 (got ${JSON.stringify(input.pids)})`);
    out.pids = pids;
  }
  if (input.disk !== undefined) {
    const disk = parseResourceBytes(input.disk, `"${what}.disk"`);
    if (!disk.ok) return disk;
    out.disk = disk.value;
  }
  return ok(out);
}
