import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { WharfError } from '../common/index.ts';
import type { AppEnv } from './app-types.ts';

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;

/**
 * Parses a JSON object body, turning garbage into a clear 400 instead of a 500. The body must
 * say `Content-Type: application/json`: a browser sends `text/plain` and form bodies to any
 * origin without asking, so accepting them as JSON would let another site's page post to the API.
 * At most `maxJsonBodyBytes` are read (hono's body limit answers from Content-Length at once and
 * stops reading a chunked body at the limit), so a huge body is refused with 413, never buffered.
 * `optional`: an empty body (no content type needed) reads as `{}`.
 */
export async function readJsonBody(c: Context<AppEnv>, options: { optional?: boolean } = {}): Promise<Record<string, unknown>> {
  const limit = c.get('maxJsonBodyBytes');
  await bodyLimit({
    maxSize: limit,
    onError: () => {
      throw new WharfError('payload_too_large', `a JSON request body may be at most ${limit} bytes`);
    },
  })(c, () => Promise.resolve());
  const text = await c.req.text();
  if (options.optional && !text.trim()) return {};
  if (!JSON_CONTENT_TYPE.test(c.req.header('content-type') ?? '')) {
    throw new WharfError('bad_request', 'request body must be JSON sent with "Content-Type: application/json"');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new WharfError('bad_request', 'request body must be a JSON object');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new WharfError('bad_request', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}
