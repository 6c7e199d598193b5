import { describe, expect, it } from 'vitest';
import { readAhead } from '../../src/schema/read-ahead.js';

/** A source that hands out what is pushed, and records whether it was closed. */
function source<E>() {
  const queued: E[] = [];
  let waiting: ((result: IteratorResult<E>) => void) | null = null;
  let ended = false;
  const state = { closed: false };
  return {
    state,
    push(event: E) {
      if (waiting) {
        const resolve = waiting;
        waiting = null;
        resolve({ value: event, done: false });
      } else queued.push(event);
    },
    end() {
      ended = true;
      waiting?.({ value: undefined, done: true });
    },
    iterable: {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          queued.length > 0
            ? Promise.resolve({ value: queued.shift()!, done: false as const })
            : ended
              ? Promise.resolve({ value: undefined, done: true as const })
              : new Promise<IteratorResult<E>>((resolve) => (waiting = resolve)),
        return: () => {
          state.closed = true;
          return Promise.resolve({ value: undefined, done: true as const });
        },
      }),
    } as AsyncIterable<E>,
  };
}

/** A read per event that finishes when the test says so. */
function reads() {
  const started: number[] = [];
  const finish = new Map<number, (value: string) => void>();
  const fail = new Map<number, (error: Error) => void>();
  let running = 0;
  let most = 0;
  return {
    started,
    get most() {
      return most;
    },
    read: (event: number) => {
      started.push(event);
      running += 1;
      most = Math.max(most, running);
      return new Promise<string>((resolve, reject) => {
        finish.set(event, (value) => {
          running -= 1;
          resolve(value);
        });
        fail.set(event, (error) => {
          running -= 1;
          reject(error);
        });
      });
    },
    finish: (event: number) => finish.get(event)!(`read ${event}`),
    fail: (event: number) => fail.get(event)!(new Error(`read ${event} failed`)),
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('reading a subscription ahead of what it has sent', () => {
  it('starts the reads of events that arrived together at once, and yields in event order whatever order they finish in', async () => {
    const events = source<number>();
    const r = reads();
    for (const e of [1, 2, 3]) events.push(e);
    const out = readAhead(events.iterable, r.read, 64);
    const results: string[] = [];
    const consumed = (async () => {
      for await (const value of out) results.push(value);
    })();
    await settle();
    expect(r.started).toEqual([1, 2, 3]);
    r.finish(3);
    r.finish(2);
    await settle();
    expect(results).toEqual([]);
    r.finish(1);
    await settle();
    expect(results).toEqual(['read 1', 'read 2', 'read 3']);
    events.push(4);
    await settle();
    r.finish(4);
    events.end();
    await consumed;
    expect(results).toEqual(['read 1', 'read 2', 'read 3', 'read 4']);
  });

  it('runs no more reads at once than its limit, and one at a time with a limit of one', async () => {
    for (const limit of [1, 2]) {
      const events = source<number>();
      const r = reads();
      for (const e of [1, 2, 3, 4, 5]) events.push(e);
      events.end();
      const results: string[] = [];
      const consumed = (async () => {
        for await (const value of readAhead(events.iterable, r.read, limit)) results.push(value);
      })();
      for (let e = 1; e <= 5; e++) {
        await settle();
        r.finish(e);
      }
      await consumed;
      expect(results).toHaveLength(5);
      expect(r.most).toBe(limit);
    }
  });

  it('throws a failed read in its turn, after the events before it, and closes the source', async () => {
    const events = source<number>();
    const r = reads();
    for (const e of [1, 2, 3]) events.push(e);
    const results: string[] = [];
    const consumed = (async () => {
      for await (const value of readAhead(events.iterable, r.read, 64)) results.push(value);
    })();
    await settle();
    r.fail(2);
    await settle();
    r.finish(1);
    await expect(consumed).rejects.toThrow('read 2 failed');
    expect(results).toEqual(['read 1']);
    expect(events.state.closed).toBe(true);
  });

  it('closes the source when the consumer stops', async () => {
    const events = source<number>();
    const r = reads();
    events.push(1);
    const out = readAhead(events.iterable, r.read, 64);
    const first = out.next();
    await settle();
    r.finish(1);
    expect(await first).toEqual({ value: 'read 1', done: false });
    await out.return(undefined);
    expect(events.state.closed).toBe(true);
  });
});
