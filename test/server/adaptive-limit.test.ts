import { describe, expect, it } from 'vitest';
import { AdaptiveLimit } from '../../src/server/adaptive-limit.js';
import { LagGate } from '../../src/server/loop-lag.js';

/** Feeds `windows` full windows of requests that each took `ms` with `inFlight` running. */
function feed(limit: AdaptiveLimit, windows: number, ms: number, inFlight: number, windowSize = 16) {
  for (let i = 0; i < windows * windowSize; i++) limit.observe(ms, inFlight);
}

describe('adaptive in-flight limit', () => {
  it('starts at the ceiling, so a new process refuses nothing', () => {
    expect(new AdaptiveLimit({ floor: 4, ceiling: 64, tolerance: 2 }).limit).toBe(64);
  });

  it('shrinks while queueing raises latency past the tolerance, and never below the floor', () => {
    const changes: number[] = [];
    const limit = new AdaptiveLimit({ floor: 4, ceiling: 64, tolerance: 2 }, (value) => changes.push(value));
    feed(limit, 1, 5, 1);
    feed(limit, 1, 5, 64);
    expect(limit.limit).toBe(64);
    // Four times the uncontended latency, with the limit in use: queueing.
    feed(limit, 1, 20, 64);
    expect(limit.limit).toBe(32);
    feed(limit, 1, 20, 32);
    expect(limit.limit).toBe(16);
    feed(limit, 20, 200, 64);
    expect(limit.limit).toBe(4);
    expect(changes).toEqual([32, 16, 8, 4]);
  });

  it('shrinks by at most half a window: one slow window is not a collapse', () => {
    const limit = new AdaptiveLimit({ floor: 1, ceiling: 64, tolerance: 2 });
    feed(limit, 1, 1, 64);
    feed(limit, 1, 1_000, 64);
    expect(limit.limit).toBe(32);
  });

  it('does not shrink when latency rises while little runs: a busy machine is not this process queueing', () => {
    const limit = new AdaptiveLimit({ floor: 4, ceiling: 64, tolerance: 2 });
    feed(limit, 1, 5, 1);
    feed(limit, 50, 100, 3);
    expect(limit.limit).toBe(64);
  });

  it('shrinks when as many as the floor run, far below half the ceiling: a process short of CPU leaves requests unread', () => {
    const limit = new AdaptiveLimit({ floor: 4, ceiling: 64, tolerance: 2 });
    feed(limit, 1, 5, 1);
    feed(limit, 1, 20, 4);
    expect(limit.limit).toBe(32);
  });

  it('grows back to the ceiling once latency is within the tolerance again', () => {
    const limit = new AdaptiveLimit({ floor: 4, ceiling: 64, tolerance: 2 });
    feed(limit, 1, 5, 1);
    feed(limit, 10, 100, 64);
    expect(limit.limit).toBe(4);
    // Used and fast: it grows step by step.
    feed(limit, 1, 6, 4);
    expect(limit.limit).toBe(6);
    // Hardly used and fast: it grows faster, up to the ceiling and no further.
    feed(limit, 20, 5, 1);
    expect(limit.limit).toBe(64);
  });

  it('holds near the latency the tolerance allows', () => {
    // A process whose latency is its uncontended 5 ms up to 8 in flight, then grows with the queue.
    const limit = new AdaptiveLimit({ floor: 2, ceiling: 256, tolerance: 2 });
    feed(limit, 1, 5, 1);
    for (let window = 0; window < 200; window++) {
      const inFlight = limit.limit;
      feed(limit, 1, 5 * Math.max(1, inFlight / 8), inFlight);
    }
    expect(limit.limit).toBeGreaterThanOrEqual(8);
    expect(limit.limit).toBeLessThanOrEqual(24);
  });

  it('keeps the floor within the ceiling', () => {
    const limit = new AdaptiveLimit({ floor: 8, ceiling: 4, tolerance: 2 });
    feed(limit, 1, 5, 1);
    feed(limit, 10, 500, 4);
    expect(limit.limit).toBe(4);
  });
});

describe('event-loop lag gate', () => {
  it('closes after several lagging checks in a row and opens at the first on time', () => {
    const gate = new LagGate(50, 3);
    gate.observe(200);
    gate.observe(200);
    expect(gate.open).toBe(true);
    gate.observe(10);
    gate.observe(80);
    gate.observe(80);
    expect(gate.open).toBe(true);
    gate.observe(80);
    expect(gate.open).toBe(false);
    expect(gate.lagMs).toBe(80);
    gate.observe(49);
    expect(gate.open).toBe(true);
  });
});
