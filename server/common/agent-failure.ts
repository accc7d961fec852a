import { WharfError, type ErrorCode } from './errors.ts';

/**
 * A failure as a workspace agent reports it: a control-channel answer (`error`, `message`), a
 * `wharf-terminal` reply or refusal, a `wharf-doc` close instruction. `code` is what the agent
 * sent, unchecked: agents may be older or newer than this server.
 */
export type AgentFailure = { code?: unknown; message?: unknown };

/**
 * Codes an agent may fail with. Not `unauthorized`: the agent knows nothing of the server's
 * sessions, and a 401 / 4401 would tell the browser its sign-in expired.
 */
const AGENT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'bad_request',
  'forbidden',
  'not_found',
  'conflict',
  'precondition_failed',
  'payload_too_large',
  'too_many',
  'unavailable',
  'internal',
]);

/** Other spellings agents answer with (the feature store's size refusal). */
const ALIASES: Readonly<Record<string, ErrorCode>> = { too_large: 'payload_too_large' };

/**
 * The one mapping from an agent's failure to the server's error; `http/error-mapping.ts` then
 * turns its code into an HTTP status or a websocket close code. A code the agent may not use, or
 * free text where a code belongs (older control answers carry only `error: "<reason>"`), becomes
 * `fallback` with that text as the message, so nothing the agent said is lost.
 */
export function mapAgentFailure(failure: AgentFailure, options: { fallback?: ErrorCode; context?: string } = {}): WharfError {
  const raw = typeof failure.code === 'string' ? failure.code : undefined;
  const known = raw === undefined ? undefined : AGENT_CODES.has(raw) ? (raw as ErrorCode) : ALIASES[raw];
  const given = typeof failure.message === 'string' && failure.message ? failure.message : undefined;
  const message = given ?? (known === undefined ? raw : undefined) ?? 'the workspace agent refused the request';
  return new WharfError(known ?? options.fallback ?? 'internal', options.context ? `${options.context}: ${message}` : message);
}
