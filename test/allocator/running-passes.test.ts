import { describe, expect, it } from 'vitest';
import { AfterCommit, type AllocatorDeps } from '../../src/allocator/context.js';
import { RunningPasses } from '../../src/allocator/scheduler/running-passes.js';
import { RecordingEvents } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A request that comes while a pass of its type runs in this process has its lease's first event
// published with the commit of the next pass, which serves it, instead of on its own; never with
// a pass that read the queue before the request committed, and never later than a short bound.

const leaseEvent = (leaseId: number, status: string) => ({ kind: 'lease' as const, leaseId, status, logId: null });
const afterWith = (...events: ReturnType<typeof leaseEvent>[]) => {
  const after = new AfterCommit();
  for (const event of events) after.publish(event);
  return after;
};

describe('the passes running in this process', () => {
  const sink = new RecordingEvents();
  const deps = { events: sink, queue: { wake: () => {}, reserve: () => null } } as unknown as AllocatorDeps;

  it('keeps a request for the next pass only while a pass of its queue runs', async () => {
    const passes = new RunningPasses();
    expect(passes.carry(1, afterWith(leaseEvent(1, 'PENDING')), deps)).toBe(false);

    const first = passes.started(1);
    expect(passes.carry(2, afterWith(leaseEvent(2, 'PENDING')), deps)).toBe(false);
    expect(passes.carry(1, afterWith(leaseEvent(3, 'PENDING')), deps)).toBe(true);
    expect(passes.carry(1, afterWith(leaseEvent(4, 'PENDING')), deps)).toBe(true);
    // The running pass read the queue before these requests: its commit does not take them.
    const running = afterWith(leaseEvent(9, 'ACTIVE'));
    passes.publishWith(1, first, running);
    passes.ended(1, first, deps);
    sink.events.length = 0;
    running.flush(deps);
    expect(sink.events.map((e) => (e as { leaseId: number }).leaseId)).toEqual([9]);

    // The next pass serves them: its commit publishes their events first, in order, then its own.
    await waitFor(() => performance.now() > first);
    const next = passes.started(1);
    const served = afterWith(leaseEvent(3, 'ACTIVE'), leaseEvent(4, 'ACTIVE'));
    passes.publishWith(1, next, served);
    passes.ended(1, next, deps);
    sink.events.length = 0;
    served.flush(deps);
    // Of one object's events in one batch, the last: one event per lease (a sink without
    // publishBatch gets them all, in order).
    expect(
      sink.events.map((e) => `${(e as { leaseId: number }).leaseId} ${e.kind === 'lease' ? e.status : ''}`),
    ).toEqual(['3 PENDING', '4 PENDING', '3 ACTIVE', '4 ACTIVE']);
    // Taken once: their timers do not publish them again.
    sink.events.length = 0;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(sink.events).toEqual([]);
  });

  it('publishes them when the next pass ends without taking them, or soon when none runs here', async () => {
    const passes = new RunningPasses();
    const first = passes.started(7);
    sink.events.length = 0;
    expect(passes.carry(7, afterWith(leaseEvent(5, 'PENDING')), deps)).toBe(true);
    passes.ended(7, first, deps);
    expect(sink.events).toEqual([]);
    // The next pass rolls back (or finds nothing): it ends, and they go out then.
    await waitFor(() => performance.now() > first);
    passes.ended(7, passes.started(7), deps);
    expect(sink.events).toEqual([leaseEvent(5, 'PENDING')]);

    // No pass of the queue runs here again: a short bound.
    sink.events.length = 0;
    const third = passes.started(7);
    expect(passes.carry(7, afterWith(leaseEvent(6, 'PENDING')), deps)).toBe(true);
    passes.ended(7, third, deps);
    await waitFor(() => sink.events.length > 0, 2_000);
    expect(sink.events).toEqual([leaseEvent(6, 'PENDING')]);
  });
});
