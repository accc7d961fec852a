import { Readable } from 'node:stream';
import { encodeFrame, fail, FRAME_HEADER_BYTES, ok, type DeployKind, type Result } from '../common/index.ts';
import { validateRelativePath, validateVariables } from './plan.ts';

/**
 * The CLI's upload (`POST /api/deploys`): a length-prefixed JSON options frame, then the packed
 * context (entries under `src/`). Options travel in the body so variables never appear in a
 * URL or a proxy's header log.
 */
export const UPLOAD_CONTENT_TYPE = 'application/vnd.wharf.deploy-upload';

export type UploadOptions = {
  remote?: boolean;
  variables?: Record<string, string>;
  /** Manifest path relative to the uploaded folder. */
  file: string;
  /** The manifest's text (the CLI read it, and checked it is not excluded by .oktetoignore). */
  manifest: string;
};

export type ValidUpload = { kind: DeployKind; remote: boolean | undefined; variables: Record<string, string>; file: string; manifest: string };

export function encodeUploadHeader(options: UploadOptions): Buffer {
  return encodeFrame(Buffer.from(JSON.stringify(options)));
}

export function validateUploadOptions(kind: unknown, raw: unknown): Result<ValidUpload, string> {
  if (kind !== 'deploy' && kind !== 'destroy') return fail('"kind" must be deploy or destroy');
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return fail('upload options must be a JSON object');
  const options = raw as Record<string, unknown>;
  if (options.remote !== undefined && typeof options.remote !== 'boolean') return fail('"remote" must be true or false');
  const variables = validateVariables(options.variables);
  if (!variables.ok) return variables;
  if (typeof options.file !== 'string') return fail('"file" (the manifest path) is required');
  const file = validateRelativePath(options.file, 'the manifest path');
  if (!file.ok) return file;
  if (typeof options.manifest !== 'string') return fail('"manifest" (the manifest text) is required');
  return ok({ kind, remote: options.remote as boolean | undefined, variables: variables.value, file: file.value, manifest: options.manifest });
}

/** Reads the options frame off the front of the body; the rest of the body is the tar. */
export async function readUploadHeader(body: Readable, maxHeaderBytes: number): Promise<Result<{ options: unknown; tar: Readable }, string>> {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buffered = Buffer.alloc(0);
  let need = FRAME_HEADER_BYTES;
  let length: number | undefined;
  while (buffered.length < need) {
    const next = await iterator.next();
    if (next.done) return fail('the upload ended before its options');
    buffered = Buffer.concat([buffered, Buffer.from(next.value)]);
    if (length === undefined && buffered.length >= FRAME_HEADER_BYTES) {
      length = buffered.readUInt32BE(0);
      if (length > maxHeaderBytes) return fail(`the upload options are too large (${length} bytes)`);
      need = FRAME_HEADER_BYTES + length;
    }
  }
  let options: unknown;
  try {
    options = JSON.parse(buffered.subarray(FRAME_HEADER_BYTES, need).toString('utf8'));
  } catch {
    return fail('the upload options are not JSON');
  }
  const leftover = buffered.subarray(need);
  async function* rest() {
    if (leftover.length) yield leftover;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  }
  const tar = Readable.from(rest(), { objectMode: false });
  tar.on('close', () => {
    // Stop reading the request if the build went away early.
    if (!tar.readableEnded) void iterator.return?.();
  });
  return ok({ options, tar });
}
