import { describe, expect, it } from 'vitest';
import { mapAgentFailure } from './agent-failure.ts';
import { WharfError } from './errors.ts';

describe('mapAgentFailure', () => {
  it('keeps the codes an agent may use, with its message', () => {
    for (const code of ['bad_request', 'forbidden', 'not_found', 'conflict', 'precondition_failed', 'payload_too_large', 'too_many', 'unavailable', 'internal'] as const) {
      const error = mapAgentFailure({ code, message: 'why' });
      expect(error).toBeInstanceOf(WharfError);
      expect({ code: error.code, message: error.message }).toEqual({ code, message: 'why' });
    }
  });

  it('reads the feature store\'s "too_large" as payload_too_large', () => {
    expect(mapAgentFailure({ code: 'too_large', message: 'value too large' }).code).toBe('payload_too_large');
  });

  it('never lets an agent answer unauthorized, which would sign the browser out', () => {
    expect(mapAgentFailure({ code: 'unauthorized', message: 'x' }).code).toBe('internal');
    expect(mapAgentFailure({ code: 'unauthorized', message: 'x' }, { fallback: 'too_many' }).code).toBe('too_many');
  });

  it('turns free text in the code\'s place into the fallback, keeping the text as the message', () => {
    const error = mapAgentFailure({ code: 'Unsupported key format' }, { fallback: 'bad_request', context: 'key refused' });
    expect({ code: error.code, message: error.message }).toEqual({ code: 'bad_request', message: 'key refused: Unsupported key format' });
  });

  it('answers internal with a generic message when the agent said nothing usable', () => {
    for (const failure of [{}, { code: 42 }, { code: undefined, message: '' }, { code: ['not_found'] }]) {
      const error = mapAgentFailure(failure);
      expect(error.code).toBe('internal');
      expect(error.message).toBe('the workspace agent refused the request');
    }
  });

  it('prefixes a known code\'s message with the context', () => {
    expect(mapAgentFailure({ code: 'not_found', message: 'no such key' }, { context: 'revoking the key failed' }).message).toBe('revoking the key failed: no such key');
  });
});
