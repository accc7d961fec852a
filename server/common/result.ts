/** Expected failures are values: callers must look at `ok` before using `value`. */
export type Result<T, E = { code: string; message: string }> =
  | { ok: true; value: T }
  | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}
