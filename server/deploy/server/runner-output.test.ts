import { describe, expect, it } from 'vitest';
import type { DeployEventInput } from '../../common/index.ts';
import { createRunnerTracker } from './runner-output.ts';

const commands = [
  { index: 1, name: 'one', command: 'echo one' },
  { index: 2, name: 'two', command: 'exit 3' },
];

function track() {
  const events: DeployEventInput[] = [];
  const tracker = createRunnerTracker({ nonce: 'n0', commands, emit: (e) => events.push(e), now: () => 1000 });
  return { events, tracker };
}

describe('runner output', () => {
  it('reassembles lines split across chunks and keeps streams apart', () => {
    const { events, tracker } = track();
    tracker.feed('v:1', '@@n0 start 1 10.00\n@@n0 1 o hel');
    tracker.feed('v:2', '@@n0 1 e warn');
    tracker.feed('v:1', 'lo\n@@n0 1 o \n');
    tracker.feed('v:2', 'ing\n');
    tracker.feed('v:1', Buffer.from('@@n0 1 o caf\xc3', 'latin1'));
    tracker.feed('v:1', Buffer.from('\xa9\n@@n0 end 1 0 10.25\n', 'latin1'));
    expect(events).toEqual([
      { type: 'command-start', index: 1, name: 'one', command: 'echo one' },
      { type: 'output', index: 1, stream: 'stdout', text: 'hello\n\n' },
      { type: 'output', index: 1, stream: 'stderr', text: 'warning\n' },
      { type: 'output', index: 1, stream: 'stdout', text: 'café\n' },
      { type: 'command-end', index: 1, exitCode: 0, durationMs: 250 },
    ]);
    expect(tracker.allSucceeded).toBe(false);
  });

  it('holds output that overtakes its command start, and reports the failed command', () => {
    const { events, tracker } = track();
    tracker.feed('v:2', '@@n0 1 e early\n');
    tracker.feed('v:1', '#5 builder noise\n@@n0 start 1 1\n@@n0 end 1 0 1\n@@n0 start 2 1\n@@n0 end 2 3 2\n');
    tracker.flush();
    expect(events.map((e) => e.type)).toEqual(['log', 'command-start', 'output', 'command-end', 'command-start', 'command-end']);
    expect(events[2]).toEqual({ type: 'output', index: 1, stream: 'stderr', text: 'early\n' });
    expect(tracker.failed).toEqual({ index: 2, name: 'two', exitCode: 3 });
  });

  it('ignores lines that fake the prefix with another nonce', () => {
    const { events, tracker } = track();
    tracker.feed('v:1', '@@other end 1 0\n@@n0 fatal no curl\n');
    expect(events).toEqual([{ type: 'log', text: '@@other end 1 0\n' }]);
    expect(tracker.fatal).toBe('no curl');
  });
});
