import { describe, expect, it } from 'vitest';
import type { Fleet } from './fleet.js';
import { checkLeases, type ModelLease } from './lease-model.js';
import { LogChecker, type LogRow } from './log-checker.js';

// The checkers must be able to fail: each invariant is broken on purpose in a synthetic log.

const EXCLUSIVE = 1;
const SHARED = 2;
const rules = (id: number) =>
  id === EXCLUSIVE ? { exclusive: true, limit: 2 } : id === SHARED ? { exclusive: false, limit: null } : undefined;

function logBook() {
  let id = 0n;
  const rows: LogRow[] = [];
  const at = new Date('2030-01-01T00:00:00Z');
  const add = (type: string, fields: Partial<LogRow> = {}) =>
    rows.push({
      id: ++id,
      type,
      leaseId: null,
      resourceId: null,
      blueprintId: null,
      data: {},
      createdAt: at,
      ...fields,
    });
  return {
    rows,
    allocate: (resourceId: number, blueprintId = EXCLUSIVE) => add('resource-allocated', { resourceId, blueprintId }),
    resource: (type: string, resourceId: number, data: Record<string, unknown> = {}) =>
      add(type, { resourceId, blueprintId: EXCLUSIVE, data }),
    lease: (type: string, leaseId: number, data: Record<string, unknown> = {}, createdAt = at) =>
      add(type, { leaseId, data, createdAt }),
    /** A lease served by resource `resourceId` and let go again. */
    served(leaseId: number, resourceId: number) {
      this.lease('lease-requested', leaseId);
      this.lease('lease-activated', leaseId, { resourceId });
      this.lease('lease-released', leaseId, { reason: 'command' });
      this.lease('lease-destroyed', leaseId);
    },
  };
}

function check(rows: LogRow[], slot?: (id: number) => string | undefined): LogChecker {
  const checker = new LogChecker(rules, slot);
  for (const row of rows) checker.feed(row);
  return checker;
}

describe('model invariant checkers', () => {
  it('accept a clean history: leases one after the other on an exclusive resource', () => {
    const book = logBook();
    book.allocate(10);
    book.resource('resource-activated', 10);
    book.served(1, 10);
    book.served(2, 10);
    const checker = check(book.rows);
    const final = {
      leases: new Map([
        [1, 'DESTROYED' as const],
        [2, 'DESTROYED' as const],
      ]),
      resources: new Map([[10, 'ACTIVE' as const]]),
    };
    expect(checker.finish(final, true)).toEqual([]);
  });

  it('catch two leases holding one exclusive slot at once, but not on a shared resource', () => {
    for (const blueprintId of [EXCLUSIVE, SHARED]) {
      const book = logBook();
      book.allocate(10, blueprintId);
      book.resource('resource-activated', 10);
      book.lease('lease-requested', 1);
      book.lease('lease-requested', 2);
      book.lease('lease-activated', 1, { resourceId: 10 });
      // Released is not enough: the slot lock goes only when the lease is destroyed.
      book.lease('lease-released', 1, { reason: 'command' });
      book.lease('lease-acquired', 2, { resourceId: 10 });
      const violations = check(book.rows).violations;
      if (blueprintId === EXCLUSIVE) expect(violations.join()).toMatch(/lease 2 took it while lease 1 held it/);
      else expect(violations).toEqual([]);
    }
  });

  it('catch more live resources than the limit, and two resources on one binding', () => {
    const book = logBook();
    book.allocate(10);
    book.allocate(11);
    book.resource('resource-released', 10, { reason: 'command' });
    // RELEASED still counts: its limit slot lock goes when it is destroyed.
    book.allocate(12);
    expect(check(book.rows).violations.join()).toMatch(/3 live resources, over its limit of 2/);

    const pool = logBook();
    pool.allocate(20, SHARED);
    pool.allocate(21, SHARED);
    expect(check(pool.rows, () => 'binding a').violations.join()).toMatch(
      /resource 21 took binding a while resource 20/,
    );
  });

  it('catch a transition the state machine does not have, and a second destroy', () => {
    const book = logBook();
    book.allocate(10);
    book.resource('resource-activated', 10);
    book.served(1, 10);
    book.lease('lease-destroyed', 1);
    book.resource('resource-destroyed', 10);
    expect(check(book.rows).violations).toEqual([
      'log 7 (lease-destroyed): lease 1: DESTROYED → DESTROYED is no transition',
      'log 8 (resource-destroyed): resource 10: ACTIVE → DESTROYED is no transition',
    ]);
  });

  it('catch a lease on a resource that is not open, and a reclaim of a resource in use', () => {
    const book = logBook();
    book.allocate(10);
    book.lease('lease-requested', 1);
    book.lease('lease-activated', 1, { resourceId: 10 });
    book.resource('resource-activated', 10);
    book.resource('resource-released', 10, { reason: 'reclaimed' });
    const violations = check(book.rows).violations.join('\n');
    expect(violations).toMatch(/lease 1 became ACTIVE on resource 10, which is PENDING/);
    expect(violations).toMatch(/resource 10 reclaimed while leases 1 were on it/);
  });

  it('catch leases that never settled and tables that disagree with the log', () => {
    const book = logBook();
    book.allocate(10);
    book.resource('resource-activated', 10);
    book.lease('lease-requested', 1);
    book.lease('lease-activated', 1, { resourceId: 10 });
    book.lease('lease-released', 1, { reason: 'command' });
    const final = {
      leases: new Map([
        [1, 'DESTROYED' as const],
        [2, 'PENDING' as const],
      ]),
      resources: new Map([[10, 'ACTIVE' as const]]),
    };
    const problems = check(book.rows).finish(final, true).join('\n');
    expect(problems).toMatch(/lease 1 is DESTROYED but its log ends at RELEASED/);
    expect(problems).toMatch(/lease 2 \(PENDING\) has no lease-requested log/);
    expect(problems).toMatch(/lease 1 did not settle: PENDING → ACTIVE → RELEASED/);
  });

  it('catch releases the model did not allow: early expiry, a stray command, a never-lease served', () => {
    const book = logBook();
    book.allocate(10);
    book.resource('resource-activated', 10);
    book.lease('lease-requested', 1);
    book.lease('lease-activated', 1, { resourceId: 10 });
    book.lease('lease-released', 1, { reason: 'expired' }, new Date('2030-01-01T00:00:00Z'));
    book.lease('lease-destroyed', 1);
    book.served(2, 10);
    book.served(3, 10);
    const fleet = { allowed: { exclusive: [EXCLUSIVE], later: [], host: [], never: [] } } as unknown as Fleet;
    const model = new Map<number, ModelLease>([
      [1, { id: 1, kind: 'exclusive', until: new Date('2030-01-01T00:00:05Z'), releasedByUs: false, gang: null }],
      [2, { id: 2, kind: 'exclusive', until: null, releasedByUs: false, gang: null }],
      [3, { id: 3, kind: 'never', until: null, releasedByUs: true, gang: null }],
      [4, { id: 4, kind: 'exclusive', until: null, releasedByUs: false, gang: null }],
    ]);
    const problems = checkLeases(model, check(book.rows), fleet).join('\n');
    expect(problems).toMatch(/lease 1 \(exclusive, until\) expired at .*, before/);
    expect(problems).toMatch(
      /lease 2 \(exclusive\) released by a command that neither the model nor its resource sent/,
    );
    expect(problems).toMatch(/lease 3 \(never\) sat on resource 10 of blueprint 1, which cannot serve it/);
    expect(problems).toMatch(/lease 3 \(never\) should have broken with a refusal/);
    expect(problems).toMatch(/lease 4 \(exclusive\) was requested but never logged/);
  });
});
