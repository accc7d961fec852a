import { CLOSE_CODES, toWharfError, type ErrorCode } from '../common/index.ts';

/** The one place an error code becomes an HTTP status. */
const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  too_many: 429,
  unavailable: 503,
  internal: 500,
};

/** The one place an error code becomes a websocket close code. */
const CLOSE_CODE: Record<ErrorCode, number> = {
  bad_request: CLOSE_CODES.badRequest,
  unauthorized: CLOSE_CODES.unauthorized,
  forbidden: CLOSE_CODES.forbidden,
  not_found: CLOSE_CODES.notFound,
  conflict: CLOSE_CODES.conflict,
  precondition_failed: CLOSE_CODES.preconditionFailed,
  payload_too_large: CLOSE_CODES.payloadTooLarge,
  too_many: CLOSE_CODES.tooMany,
  unavailable: CLOSE_CODES.unavailable,
  internal: CLOSE_CODES.internal,
};

export function httpStatusOf(error: unknown): number {
  return HTTP_STATUS[toWharfError(error).code];
}

export function closeCodeOf(error: unknown): number {
  return CLOSE_CODE[toWharfError(error).code];
}

export function errorBody(error: unknown): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
  const e = toWharfError(error);
  return { error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
}

/** Websocket close reasons are limited to 123 bytes. */
export function closeReasonOf(error: unknown): string {
  const message = toWharfError(error).message;
  const buf = Buffer.from(message);
  return buf.length <= 123 ? message : buf.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '') + '...';
}
