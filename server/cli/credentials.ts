import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fail, ok, type Result } from '../common/index.ts';
import type { CliConfig } from '../config/index.ts';
import type { CliFailure } from './types.ts';

export type Credentials = { url: string; token: string };

/**
 * Accepts `http(s)://host[:port][/prefix]`, and also the printed login URL
 * (`.../login?token=...`), from which the token is taken when `--token` is not given.
 */
export function parseServerUrl(raw: string): Result<{ url: string; token: string | undefined }, CliFailure> {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return fail({ code: 'usage', message: `"${raw}" is not a URL (expected e.g. http://127.0.0.1:8080)` });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return fail({ code: 'usage', message: `"${raw}" must start with http:// or https://` });
  }
  const token = parsed.searchParams.get('token') ?? undefined;
  let path = parsed.pathname.replace(/\/+$/, '');
  if (path.endsWith('/login')) path = path.slice(0, -'/login'.length);
  return ok({ url: `${parsed.protocol}//${parsed.host}${path}`, token });
}

export async function readCredentials(config: CliConfig): Promise<Result<Credentials, CliFailure>> {
  let stored: Partial<Credentials> = {};
  try {
    const parsed = JSON.parse(await readFile(config.credentialsFile, 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object') stored = parsed as Partial<Credentials>;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      return fail({ code: 'local', message: `cannot read ${config.credentialsFile}: ${(err as Error).message}; run "wharf login" again` });
    }
  }
  const url = config.override.url ?? stored.url;
  const token = config.override.token ?? stored.token;
  if (typeof url !== 'string' || typeof token !== 'string' || !url || !token) {
    return fail({ code: 'not_logged_in', message: 'not logged in: run "wharf login <server url> --token <token>" first' });
  }
  const normalised = parseServerUrl(url);
  if (!normalised.ok) return normalised;
  return ok({ url: normalised.value.url, token });
}

/** Written to a private temp file and renamed, so the token is never readable by others. */
export async function saveCredentials(config: CliConfig, credentials: Credentials): Promise<void> {
  const file = config.credentialsFile;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  // The mode given to writeFile is filtered by the umask; make it exact.
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
