import { describe, expect, it } from 'vitest';
import type { Fleet } from './fleet.js';
import { checkLeases, type ModelLease } from './lease-model.js';
import { LogChecker, type LogRow } from './log-checker.js';
import { checkScheduling, type EventRow, type LeaseRow, type SchedulingRules } from './scheduling-checker.js';

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

describe('scheduling checker', () => {
  const t0 = Date.parse('2030-01-01T00:00:00Z');
  const rules: SchedulingRules = { agingIntervalMs: 1_500, quota: (owner) => (owner === 3 ? 1 : null) };
  const lease = (id: number, fields: Partial<LeaseRow> = {}): LeaseRow => ({
    id,
    ownerId: 1,
    gangId: null,
    priority: 0,
    resourceType: 'slot',
    attributes: {},
    allowedBlueprintIds: [],
    createdAt: new Date(t0),
    ...fields,
  });
  function history(leases: LeaseRow[], withRules: SchedulingRules = rules) {
    const events: EventRow[] = [];
    const resources: { id: number; blueprintId: number }[] = [];
    const add = (type: string, at: number, leaseId: number | null, resourceId: number | null = null) =>
      events.push({ id: BigInt(events.length + 1), type, leaseId, resourceId, createdAt: new Date(t0 + at) });
    return {
      grant: (at: number, ...ids: number[]) => ids.forEach((id) => add('lease-acquired', at, id)),
      /** A grant of resource `resourceId`, of blueprint `blueprintId`. */
      grantOn: (at: number, id: number, resourceId: number, blueprintId: number) => {
        resources.push({ id: resourceId, blueprintId });
        add('lease-acquired', at, id, resourceId);
      },
      end: (at: number, id: number) => add('lease-released', at, id),
      build: (from: number, to: number, leaseId: number, resourceId: number) => {
        add('resource-allocated', from, leaseId, resourceId);
        add('resource-activated', to, null, resourceId);
      },
      check: () => checkScheduling({ leases, events, resources }, withRules),
    };
  }

  it('accept passes that serve in policy order', () => {
    const leases = [
      lease(1, { priority: 2 }),
      lease(2, { ownerId: 2 }),
      lease(3),
      lease(4, { createdAt: new Date(t0 + 100) }),
    ];
    const h = history(leases);
    // A lease granted alone in a later pass, while the only older one of its demand was ended.
    h.grant(5_000, 1, 2, 3);
    h.end(6_000, 3);
    h.grant(9_000, 4);
    expect(h.check()).toEqual([]);
  });

  it('catch a rising band, and one owner served newest first', () => {
    const h = history([lease(1), lease(2, { priority: 1 }), lease(3, { ownerId: 2 }), lease(4, { ownerId: 2 })]);
    h.grant(500, 1, 2);
    h.grant(700, 4, 3);
    const problems = h.check().join('\n');
    expect(problems).toMatch(/granted lease 2 \(band 1\) after lease 1 \(band 0\)/);
    expect(problems).toMatch(/granted lease 3 after lease 4 of the same owner/);
  });

  it('catch a grant of what a lease ahead could use, past the aging bound or of a higher band', () => {
    const h = history([
      lease(1),
      lease(2, { createdAt: new Date(t0 + 2_000) }),
      lease(3, { ownerId: 2, priority: 1 }),
      lease(4, { ownerId: 2, attributes: { other: true } }),
    ]);
    // At 4 s, lease 1 (waiting since 0) has band 2, lease 2 band 1, lease 4 (another demand) band 2.
    h.grant(4_000, 2);
    h.grant(20_000, 3, 1, 4);
    const problems = h.check().join('\n');
    expect(problems).toMatch(/gave lease 2 \(band 1\) what lease 1 \(band 2, past the aging bound\)/);
    expect(problems).toMatch(/gave lease 2 \(band 1\) what lease 3 \(band 3, past the aging bound\)/);
    expect(problems).not.toMatch(/lease 4/);
  });

  it('catch a grant of what a lease of other attributes ahead fits, where the rules say what fits', () => {
    // Blueprint 1 serves any lease; blueprint 2 only those without attributes.
    const fits = (l: LeaseRow, blueprintId: number) =>
      blueprintId === 1 || Object.keys(l.attributes ?? {}).length === 0;
    const leases = [lease(1, { priority: 1, attributes: { label: 'x' } }), lease(2, { ownerId: 2 }), lease(3)];
    const h = history(leases, { ...rules, fits });
    h.grantOn(2_000, 2, 10, 2);
    h.grantOn(2_500, 3, 11, 1);
    const problems = h.check().join('\n');
    expect(problems).not.toMatch(/gave lease 2/);
    expect(problems).toMatch(/gave lease 3 \(band 1\) what lease 1 \(band 2, past the aging bound\), waiting ahead/);
    // Without the rule, only a lease of the same demand could use what another was given.
    const same = history(leases);
    same.grantOn(2_500, 3, 11, 1);
    expect(same.check()).toEqual([]);
  });

  it('do not blame a lease building its own resource, or another owner at its quota', () => {
    const h = history([lease(1), lease(2, { ownerId: 3, priority: 1 }), lease(3, { createdAt: new Date(t0 + 2_000) })]);
    h.build(3_000, 4_500, 1, 10);
    h.grant(4_000, 3);
    h.grant(9_000, 2, 1);
    expect(h.check()).toEqual([]);
  });

  it('catch a grant to a lower band while an aged gang waits, but not while the gang is being released', () => {
    const gang = [lease(1, { gangId: 7 }), lease(2, { gangId: 7 })];
    const h = history([...gang, lease(3, { priority: -1, attributes: { label: 'x' } })]);
    h.grant(4_000, 3);
    expect(h.check().join('\n')).toMatch(
      /gave lease 3 \(band 1\) capacity while gang 7 \(band 2, past the aging bound\) waited for it/,
    );
    const released = history([...gang, lease(3, { priority: -1 })]);
    released.end(4_200, 2);
    released.grant(4_000, 3);
    expect(released.check()).toEqual([]);
  });

  it('catch a gang granted in part or over two passes, and an owner over its quota', () => {
    const h = history([
      lease(1, { gangId: 7 }),
      lease(2, { gangId: 7 }),
      lease(3, { gangId: 8 }),
      lease(4, { gangId: 8 }),
      lease(5, { ownerId: 3 }),
      lease(6, { ownerId: 3 }),
    ]);
    h.grant(100, 1);
    h.grant(200, 3);
    h.grant(300, 4);
    h.grant(400, 5, 6);
    const problems = h.check().join('\n');
    expect(problems).toMatch(/gang 7 granted in part: lease 1 at 2030-\S+, lease 2 at never/);
    expect(problems).toMatch(/gang 8 granted in part/);
    expect(problems).toMatch(/owner 3 holds 2 live slot leases, over its quota of 1/);
  });
});
