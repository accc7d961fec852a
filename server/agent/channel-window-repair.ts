import type ssh2 from 'ssh2';

type WriteFn = (data: Buffer, encoding: BufferEncoding | null, cb: (err?: Error | null) => void) => void;

type ChannelInternals = {
  _write: WriteFn;
  stderr: { _write: WriteFn };
  _chunk?: Buffer;
  _chunkcb?: (err?: Error | null) => void;
  _chunkErr?: Buffer;
  _chunkcbErr?: (err?: Error | null) => void;
  _waitWindow?: boolean;
  outgoing: { window: number };
};

/**
 * ssh2 1.17 parks a write that ran out of window in `_chunk` (stdout) or `_chunkErr` (stderr),
 * resumes only one of them per window adjustment, and never clears a finished `_chunk`. When a
 * channel's stdout and stderr both wait for window, the next adjustment re-sends stale stdout and
 * the stderr write is lost for good (stderr of a chatty command vanishes). We clear finished
 * chunks and resume the other stream ourselves. Only needed where both streams are written.
 */
export function repairChannelWindowing(channel: ssh2.ServerChannel): void {
  const c = channel as unknown as ChannelInternals;
  const writeOut = c._write.bind(c);
  const writeErr = c.stderr._write.bind(c.stderr);

  function resumeParked(): void {
    if (!c._chunk && !c._chunkErr) return;
    if (c.outgoing.window <= 0) {
      c._waitWindow = true;
      return;
    }
    if (c._chunkErr && !c._chunk) {
      const data = c._chunkErr;
      const cb = c._chunkcbErr as (err?: Error | null) => void;
      c._chunkErr = undefined;
      c._chunkcbErr = undefined;
      c.stderr._write(data, null, cb);
    } else if (c._chunk && !c._chunkErr) {
      const data = c._chunk;
      const cb = c._chunkcb as (err?: Error | null) => void;
      c._chunk = undefined;
      c._chunkcb = undefined;
      c._write(data, null, cb);
    } else {
      // Both parked: ssh2 resumes stdout first on the next adjustment; make sure one comes.
      c._waitWindow = true;
    }
  }

  c._write = (data, encoding, cb) =>
    writeOut(data, encoding, (err) => {
      c._chunk = undefined;
      c._chunkcb = undefined;
      cb(err);
      resumeParked();
    });
  c.stderr._write = (data, encoding, cb) =>
    writeErr(data, encoding, (err) => {
      c._chunkErr = undefined;
      c._chunkcbErr = undefined;
      cb(err);
      resumeParked();
    });
}
