import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeUploadHeader, readUploadHeader, validateUploadOptions } from './upload-format.ts';

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('CLI upload body', () => {
  it('splits the options frame from the tar, across any chunking', async () => {
    const body = Buffer.concat([encodeUploadHeader({ file: 'okteto.yml', manifest: 'deploy: [x]', variables: { A: 'b' } }), Buffer.from('TAR-BYTES')]);
    for (const size of [1, 3, 7, body.length]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
      const read = await readUploadHeader(Readable.from(chunks), 1024);
      if (!read.ok) throw new Error(read.error);
      expect(read.value.options).toEqual({ file: 'okteto.yml', manifest: 'deploy: [x]', variables: { A: 'b' } });
      expect(await readAll(read.value.tar)).toBe('TAR-BYTES');
    }
  });

  it('refuses garbage, oversized and truncated options plainly', async () => {
    const big = Buffer.alloc(4);
    big.writeUInt32BE(10_000_000);
    expect(await readUploadHeader(Readable.from([big]), 1024)).toEqual({ ok: false, error: 'the upload options are too large (10000000 bytes)' });
    expect(await readUploadHeader(Readable.from([Buffer.from([0, 0])]), 1024)).toEqual({ ok: false, error: 'the upload ended before its options' });
    const notJson = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')]);
    expect(await readUploadHeader(Readable.from([notJson]), 1024)).toEqual({ ok: false, error: 'the upload options are not JSON' });
  });

  it('validates the options like the workspace API does', () => {
    expect(validateUploadOptions('deploy', { file: 'okteto.yml', manifest: 'x' }).ok).toBe(true);
    expect(validateUploadOptions('build', { file: 'okteto.yml', manifest: 'x' })).toEqual({ ok: false, error: '"kind" must be deploy or destroy' });
    expect(validateUploadOptions('deploy', { file: '/etc/okteto.yml', manifest: 'x' }).ok).toBe(false);
    expect(validateUploadOptions('deploy', { file: 'okteto.yml', manifest: 'x', remote: 'yes' }).ok).toBe(false);
    expect(validateUploadOptions('deploy', { file: 'okteto.yml', manifest: 'x', variables: { 'a b': '1' } }).ok).toBe(false);
    expect(validateUploadOptions('deploy', [1]).ok).toBe(false);
  });
});
