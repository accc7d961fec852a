import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_NAMES, parseManifest, type DevSection } from '../okteto/index.ts';
import type { CliContext } from './types.ts';

export type FoundDevSection = { ok: true; dev: DevSection; file: string; manifestName?: string } | { ok: false; message: string };

/**
 * The manifest's `dev.<name>`, or a failure message naming what went wrong (`wharf up`, `wharf
 * env`). `hybridOnly`: a section of another mode is refused, since only hybrid runs here.
 */
export async function readDevSection(ctx: CliContext, file: string | undefined, name: string, options: { command: string; hybridOnly: boolean }): Promise<FoundDevSection> {
  const cwd = ctx.config.cwd;
  const path = file ? join(cwd, file) : MANIFEST_NAMES.map((n) => join(cwd, n)).find((p) => existsSync(p));
  if (!path) return { ok: false, message: `there is no okteto.yml (or okteto.yaml) in ${cwd}; run wharf ${options.command} from the folder that holds it, or pass --file <manifest>` };
  const text = await readFile(path, 'utf8').catch((err: Error) => err);
  if (text instanceof Error) return { ok: false, message: `cannot read ${path}: ${text.message}` };
  const parsed = parseManifest(text, path);
  if (!parsed.ok) return { ok: false, message: parsed.error.message };
  const dev = parsed.value.manifest.dev ?? {};
  const section = dev[name];
  if (!section) {
    const names = Object.keys(dev);
    return { ok: false, message: `${path}: there is no dev.${name}${names.length ? `; the manifest has ${names.map((n) => `"${n}"`).join(', ')}` : '; the manifest has no dev section'}` };
  }
  if (options.hybridOnly && section.mode !== 'hybrid') return { ok: false, message: `${section.where}: dev.${name} has mode "${section.mode}"; wharf ${options.command} runs mode: hybrid only` };
  return { ok: true, dev: section, file: path, manifestName: parsed.value.manifest.name };
}
