import { parse, type ExecutionResult } from 'graphql';
import { Repeater } from 'graphql-yoga';
import { describe, expect, it, vi } from 'vitest';
import { Cohorts, mayShare } from '../../src/server/cohorts.js';
import { waitFor } from '../support/wait.js';

function source() {
  let push: (value: ExecutionResult) => Promise<unknown> = () => Promise.resolve();
  let stopped = false;
  const results = new Repeater<ExecutionResult>(async (p, stop) => {
    push = p;
    await stop;
    stopped = true;
  });
  return { results, push: (value: ExecutionResult) => push(value), stopped: () => stopped };
}

describe('subscription cohorts', () => {
  it('shares only subscriptions of live-only fields', () => {
    expect(mayShare(parse('subscription { leasesChanged { id } }'), undefined)).toBe(true);
    expect(mayShare(parse('subscription { leasesChanged { id } resourcesChanged { id } }'), undefined)).toBe(true);
    // A per-object stream is live-only without `after`; with it, it replays from its own cursor.
    expect(mayShare(parse('subscription { leaseEvents(leaseId: "x") { cursor } }'), undefined)).toBe(true);
    expect(mayShare(parse('subscription { resourceEvents(resourceId: "x", after: null) { cursor } }'), undefined)).toBe(
      true,
    );
    expect(mayShare(parse('subscription { leaseEvents(leaseId: "x", after: "0") { cursor } }'), undefined)).toBe(false);
    const withAfter = parse('subscription ($a: String) { leaseEvents(leaseId: "x", after: $a) { cursor } }');
    expect(mayShare(withAfter, undefined, { a: '12' })).toBe(false);
    expect(mayShare(withAfter, undefined, { a: null })).toBe(true);
    expect(mayShare(withAfter, undefined, {})).toBe(true);
    // A default stands in for a variable not given: a cursor there replays, null does not.
    const withDefault = parse('subscription ($a: String = "0") { leaseEvents(leaseId: "x", after: $a) { cursor } }');
    expect(mayShare(withDefault, undefined, {})).toBe(false);
    expect(mayShare(withDefault, undefined, undefined)).toBe(false);
    expect(mayShare(withDefault, undefined, { a: null })).toBe(true);
    const nullDefault = parse('subscription ($a: String = null) { leaseEvents(leaseId: "x", after: $a) { cursor } }');
    expect(mayShare(nullDefault, undefined, {})).toBe(true);
    expect(
      mayShare(parse('subscription { leaseEvents(leaseId: "x") { cursor } leasesChanged { id } }'), undefined),
    ).toBe(true);
    expect(mayShare(parse('{ leases { edges { cursor } } }'), undefined)).toBe(false);
  });

  it('runs one execution per key, hands every member the same result, and stops with its last member', async () => {
    const cohorts = new Cohorts();
    const shared = source();
    let started = 0;
    const start = () => {
      started++;
      return shared.results;
    };
    const a = (await cohorts.join('k', start)) as AsyncIterableIterator<ExecutionResult>;
    const b = (await cohorts.join('k', start)) as AsyncIterableIterator<ExecutionResult>;
    const other = source();
    const c = (await cohorts.join('other', () => other.results)) as AsyncIterableIterator<ExecutionResult>;
    expect(started).toBe(1);
    expect(cohorts.size).toEqual({ cohorts: 2, members: 3 });

    const result = { data: { n: 1 } };
    const [fromA, fromB] = [a.next(), b.next()];
    await shared.push(result);
    expect((await fromA).value).toBe(result);
    expect((await fromB).value).toBe(result);
    const fromC = c.next();
    await other.push({ data: { n: 2 } });
    expect((await fromC).value).toEqual({ data: { n: 2 } });

    await a.return!();
    expect(shared.stopped()).toBe(false);
    await b.return!();
    expect(cohorts.size).toEqual({ cohorts: 1, members: 1 });
    await c.return!();
    expect(cohorts.size).toEqual({ cohorts: 0, members: 0 });
  });

  it('serializes each result once for all members that write to their sockets themselves', async () => {
    const cohorts = new Cohorts();
    const shared = source();
    const sent: string[][] = [[], [], []];
    const members = [];
    for (const out of sent)
      members.push(
        await cohorts.join(
          'k',
          () => shared.results,
          (json) => out.push(json),
        ),
      );
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      await shared.push({ data: { n: 1 } });
      await shared.push({ data: { n: 2 } });
      await waitFor(() => sent.every((out) => out.length === 2));
      expect(stringify).toHaveBeenCalledTimes(2);
    } finally {
      stringify.mockRestore();
    }
    for (const out of sent) expect(out).toEqual(['{"data":{"n":1}}', '{"data":{"n":2}}']);
    for (const member of members) await (member as AsyncIterableIterator<ExecutionResult>).return!();
    await waitFor(() => shared.stopped());
  });

  it('ends a member that falls too far behind with an error, without holding up the others', async () => {
    const cohorts = new Cohorts();
    const shared = source();
    const slow = (await cohorts.join('k', () => shared.results)) as AsyncIterableIterator<ExecutionResult>;
    const fast = (await cohorts.join('k', () => shared.results)) as AsyncIterableIterator<ExecutionResult>;
    const seen: number[] = [];
    const reading = (async () => {
      for await (const result of fast) {
        seen.push((result.data as { n: number }).n);
        if (seen.length === 300) return;
      }
    })();
    for (let n = 0; n < 300; n++) await shared.push({ data: { n } });
    await reading;
    expect(seen).toHaveLength(300);
    const results: ExecutionResult[] = [];
    for await (const result of slow) results.push(result);
    // What waited is dropped at once; the member gets the error alone.
    expect(results).toHaveLength(1);
    expect(results.at(-1)?.errors?.[0]?.message).toMatch(/fell too far behind/);
  });
});
