import type { Context } from 'hono';
import { WharfError } from '../common/index.ts';

/** Parses a JSON object body, turning garbage into a clear 400 instead of a 500. */
export async function readJsonBody(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new WharfError('bad_request', 'request body must be a JSON object');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new WharfError('bad_request', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}
