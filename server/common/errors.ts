/**
 * The one error type for unexpected failures that must cross a boundary. Expected failures are
 * returned as `Result` values instead; this class exists so `http` can map a failure to an HTTP
 * status and a websocket close code in exactly one place each.
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  | 'payload_too_large'
  /** A per-user or per-resource limit on concurrent use (attached terminal clients, say). */
  | 'too_many'
  | 'unavailable'
  | 'internal';

export class WharfError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'WharfError';
    this.code = code;
    this.details = details;
  }
}

export function isWharfError(value: unknown): value is WharfError {
  return value instanceof WharfError;
}

/** Wraps anything thrown into a WharfError without losing the original message. */
export function toWharfError(value: unknown): WharfError {
  if (value instanceof WharfError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new WharfError('internal', message);
}
