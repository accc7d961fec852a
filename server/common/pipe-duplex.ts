import type { Duplex } from 'node:stream';

export type PipeEnd = {
  /** Why the pair ended: undefined when both sides finished cleanly. */
  error?: Error;
};

/**
 * Copies bytes both ways between two duplex streams until both directions are done, the way a
 * forwarded TCP connection must behave:
 * - back-pressure: each side is read only as fast as the other side drains (`pipe`), so a slow
 *   reader never makes the other end buffer without bound;
 * - half-close: one side's end of input ends only the other side's output (an HTTP client that
 *   shuts down its write side still gets its answer);
 * - errors: both streams keep an `error` listener for as long as the pair lives and after, so a
 *   reset connection never surfaces as an unhandled 'error' event; on an error or an early
 *   close, both are destroyed.
 * Resolves once when both streams are closed. Node's `stream.pipeline` is one-way, and `duplexPair`
 * joins two new streams rather than two existing ones, hence this small helper.
 */
export function pipeDuplex(a: Duplex, b: Duplex): Promise<PipeEnd> {
  return new Promise((resolve) => {
    let failure: Error | undefined;
    let settled = false;
    let closed = 0;
    const ignore = () => {};
    const fail = (err: Error) => {
      failure ??= err;
      a.destroy();
      b.destroy();
    };
    const onClose = (self: Duplex, other: Duplex) => () => {
      closed += 1;
      if (!other.destroyed) {
        // Everything `self` sent has reached `other`'s output (pipe ended it): let that drain,
        // then go, since what `other` still sends has nowhere to arrive. A side that closed
        // before its input ended was cut off: so is the other.
        if (self.readableEnded) {
          if (other.writableFinished) other.destroy();
          else other.once('finish', () => other.destroy());
        } else other.destroy();
      }
      if (closed === 2 && !settled) {
        settled = true;
        resolve(failure ? { error: failure } : {});
      }
    };
    for (const [self, other] of [[a, b], [b, a]] as const) {
      self.on('error', fail);
      // Kept after the pair ends: a stream can report an error after close (ssh2 does).
      self.once('close', () => self.on('error', ignore));
      self.once('close', onClose(self, other));
      self.pipe(other, { end: true });
    }
  });
}
