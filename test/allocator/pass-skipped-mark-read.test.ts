import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { updateLease } from '../../src/allocator/lease-update.js';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';
import { createTestBlueprint, TestBlueprintControl } from '../support/test-blueprint.js';
import type { BlueprintImplementation } from '../../src/blueprints/implementation.js';

// A pass that refused a lease without a try (its wait is patient and its capacity epoch is the
// current one) must not give a lease behind it capacity freed since the turn. It learns of such
// capacity from the type's capacity mark: a view read for a lease carries it; a lease served from
// a view kept from earlier in the pass read it on its own before its try, a round trip for every
// lease of a busy queue. Now the read is put off while the pass has sent nothing since it last saw
// the mark: a try served from what was read needs none, a read the try sends carries a read of the
// mark behind it, and a try that would write is stopped before its first statement and reads the
// mark first. What that try then sends may see a release committed after that read: the mark is
// read again after it, and the try undone if it took something and the mark moved.

/** Counts, on every pg client of this process, the statements that read the capacity mark. */
function countMarkReads() {
  return countStatements(/^SELECT \( SELECT j\."capacityMark"::text /);
}

/** Counts, on every pg client of this process, the statements whose text matches `pattern`. */
function countStatements(pattern: RegExp) {
  let count = 0;
  const real = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string } | undefined;
    const text = (typeof first === 'string' ? first : (first?.text ?? '')).replace(/\s+/g, ' ').trim();
    if (pattern.test(text)) count++;
    return (real as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof real;
  return {
    get count() {
      return count;
    },
    restore: () => {
      pg.Client.prototype.query = real;
    },
  };
}

/**
 * The test blueprint as `reading`, which asks the database (a read only) whether to take a lease
 * on a resource, after `readingControl.onAcquireCheck`.
 */
const readingControl = new TestBlueprintControl();
const testReading = createTestBlueprint(readingControl, 'reading');
const reading: BlueprintImplementation = {
  ...testReading,
  async canAcquireLeaseOn(blueprint, resource, lease, queries) {
    await readingControl.onAcquireCheck?.(lease.id);
    await queries.resourceFrontier(blueprint.id);
    return testReading.canAcquireLeaseOn(blueprint, resource, lease, queries);
  },
};

describePostgres('leases behind one refused without a try, served from a view kept in the pass', () => {
  let h: Harness;
  let counter: ReturnType<typeof countMarkReads> | null = null;
  beforeAll(async () => {
    h = await createHarness('postgresql', { implementations: [reading] });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());
  afterEach(() => counter?.restore());

  const blueprint = (name: string, config: Record<string, unknown>, implementation = 'test') =>
    h.services.blueprints.create(h.system, { name, implementation, config: { label: name, ...config } });
  const request = (attributes: Record<string, unknown>) =>
    h.services.leases.request(h.system, { resourceType: 'test-slot', attributes }).then(unwrap);
  const lease = (id: number) => h.db.prisma.lease.findUniqueOrThrow({ where: { id } });
  async function destroy(id: number) {
    unwrap(await h.services.leases.release(h.system, id));
    // The release is a command the lease's own update carries out, until it is DESTROYED.
    for (let i = 0; i < 5 && (await lease(id)).status !== 'DESTROYED'; i++) await updateLease(bareAllocatorDeps(h), id);
    expect((await lease(id)).status).toBe('DESTROYED');
  }

  /**
   * `busy`: one exclusive resource, held; a lease for it waits, refused in the current epoch.
   * `shared`: a resource nobody holds, which takes any number of leases (unless `shared` makes it
   * exclusive) and is the last its blueprint may build.
   */
  async function refusedInEpoch(sharedBy = 'test', shared: Record<string, unknown> = {}) {
    unwrap(await blueprint('busy', { exclusive: true, maxResources: 1 }));
    unwrap(await blueprint('shared', { maxResources: 1, ...shared }, sharedBy));
    const holder = await request({ label: 'busy' }); // the type's first lease makes its queue
    const pass = () => runSchedulingPass(bareAllocatorDeps(h), queueId);
    const queueId = await queueIdOf(h, 'test-slot');
    const opener = await request({ label: 'shared' });
    await pass();
    expect((await lease(holder.id)).status).toBe('ACTIVE');
    await destroy(opener.id);
    const waiting = await request({ label: 'busy' });
    await pass();
    expect((await lease(waiting.id)).blocker).toMatchObject({ reason: 'slot-lock-failure' });
    return { holder, waiting, pass, queueId };
  }

  /**
   * The type's pass job as its run leaves it when it completes with nothing to run again: gone.
   * The next request writes it again with no capacity mark, while the queue keeps the mark its
   * epoch last moved on for.
   */
  async function passJobCompleted(queueId: number) {
    await h.db.prisma.$executeRaw`DELETE FROM "Job" WHERE key = ${`pass:${queueId}`}`;
  }

  it('grants them without a read of the capacity mark each', async () => {
    const { waiting, pass } = await refusedInEpoch();
    const behind = [];
    for (let i = 0; i < 4; i++) behind.push(await request({ label: 'shared' }));
    counter = countMarkReads();
    await pass();
    const reads = counter.count;
    counter.restore();
    for (const { id } of behind) expect((await lease(id)).status).toBe('ACTIVE');
    expect((await lease(waiting.id)).status).toBe('PENDING');
    // The first of them reads its view, with the mark in it; the three after it are served from
    // that view and send nothing, so nothing they use can have freed since the mark was seen.
    expect(reads).toBe(0);
  });

  it('takes a pass job written again without a mark as no capacity freed: the lease refused in the epoch is not tried, none behind it probed', async () => {
    const { waiting, pass, queueId } = await refusedInEpoch();
    const epoch = (await lease(waiting.id)).blocker;
    await passJobCompleted(queueId);
    const behind = [];
    for (let i = 0; i < 4; i++) behind.push(await request({ label: 'shared' }));
    const [job] = await h.db.prisma.$queryRaw<{ mark: bigint | null }[]>`
      SELECT "capacityMark" AS mark FROM "Job" WHERE key = ${`pass:${queueId}`}`;
    expect(job).toEqual({ mark: null });
    counter = countStatements(/^SAVEPOINT /);
    await pass();
    const savepoints = counter.count;
    counter.restore();
    for (const { id } of behind) expect((await lease(id)).status).toBe('ACTIVE');
    expect(await lease(waiting.id)).toMatchObject({ status: 'PENDING', blocker: epoch });
    // Taken as moved, the mark sent the waiting lease back to be tried, and each lease behind it
    // was then tried in a savepoint (a probe), in case the waiting one could use what it got.
    expect(savepoints).toBe(0);
  });

  it.each([
    ['its job as the pass left it', false],
    ['its job written again without a mark', true],
  ])(
    'reads the mark before a try that would read the database: capacity freed before it goes first to the lease ahead (%s)',
    async (_, rewritten) => {
      const { holder, waiting, pass, queueId } = await refusedInEpoch();
      if (rewritten) await passJobCompleted(queueId);
      // Two leases of one demand that both blueprints serve: the first takes the free resource from
      // its view; the second, served from the same view, finds nothing free there and would look at
      // the busy resource's slot lock, which the holder's release, committed just before, has freed.
      const first = await request({});
      const second = await request({});
      let released = false;
      h.control.onAcquireCheck = async (leaseId) => {
        if (leaseId !== second.id || released) return;
        released = true;
        await destroy(holder.id);
      };
      await pass();
      expect(released).toBe(true);
      expect((await lease(first.id)).status).toBe('ACTIVE');
      // The freed slot is what the lease ahead waits for: the pass stops before the second lease,
      // and the next one serves the lease ahead first; the second shares the first one's resource.
      expect((await lease(second.id)).status).toBe('PENDING');
      h.control.onAcquireCheck = null;
      await pass();
      expect(await lease(waiting.id)).toMatchObject({
        status: 'ACTIVE',
        resourceId: (await lease(holder.id)).resourceId,
      });
      expect(await lease(second.id)).toMatchObject({
        status: 'ACTIVE',
        resourceId: (await lease(first.id)).resourceId,
      });
    },
  );

  it('reads the mark after a try that writes: capacity freed between its last read of the mark and its write goes first to the lease ahead', async () => {
    // Two exclusive resources: `busy`, held, which a lease waits for, refused in the current
    // epoch; and `shared`, here exclusive too, free. Two leases that either serves: the first
    // takes the free one (a slot lock written); the second looks at both slot locks, and the
    // holder's release commits just before it looks, after the pass last read the mark: it finds
    // the busy one free and writes its slot lock. (Found by the model check with process kills: a
    // lease of other attributes was given the exclusive resource a lease refused without a try
    // waited for.)
    const { holder, waiting, pass } = await refusedInEpoch('test', { exclusive: true });
    const first = await request({});
    const second = await request({});
    let slotWritten = false;
    let released = false;
    const real = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const sql = args[0] as string | { text?: string } | undefined;
      const text = typeof sql === 'string' ? sql : (sql?.text ?? '');
      if (/INSERT INTO "SlotLock"/.test(text)) slotWritten = true;
      if (released || !slotWritten || !/FROM "SlotLock" WHERE key = ANY/.test(text))
        return (real as (...a: unknown[]) => unknown).apply(this, args);
      released = true;
      pg.Client.prototype.query = real;
      return destroy(holder.id).then(() => (real as (...a: unknown[]) => unknown).apply(this, args));
    } as typeof real;
    try {
      await pass();
    } finally {
      pg.Client.prototype.query = real;
    }
    expect(released).toBe(true);
    expect((await lease(first.id)).status).toBe('ACTIVE');
    // The second's try took the freed slot, and the mark read after it showed the release: the try
    // was undone, and the pass stopped there (the first's grant came after the skipped lease).
    expect((await lease(second.id)).status).toBe('PENDING');
    await pass();
    expect(await lease(waiting.id)).toMatchObject({
      status: 'ACTIVE',
      resourceId: (await lease(holder.id)).resourceId,
    });
  });

  it('stops a try served from the kept view whose read finds the mark moved, and serves the lease ahead first', async () => {
    const { holder, waiting } = await refusedInEpoch('reading');
    // A pass that grants a lease which never waited reads that demand's view with its next turn:
    // the next pass then starts having seen the mark, and the two leases of that demand behind the
    // waiting one are both served from that view, each asking the database whether to take the lease.
    const deps = bareAllocatorDeps(h, { passDemands: new Map(), queueTypes: new Map() });
    const queueId = await queueIdOf(h, 'test-slot');
    const pass = () => runSchedulingPass(deps, queueId);
    const earlier = await request({});
    await pass();
    expect((await lease(earlier.id)).status).toBe('ACTIVE');
    const first = await request({});
    const second = await request({});
    let released = false;
    readingControl.onAcquireCheck = async (leaseId) => {
      if (leaseId !== second.id || released) return;
      released = true;
      await destroy(holder.id);
    };
    try {
      counter = countMarkReads();
      await pass();
      const reads = counter.count;
      counter.restore();
      expect(released).toBe(true);
      expect((await lease(first.id)).status).toBe('ACTIVE');
      // Every read of the two tries carried one of the mark (the first's look at the resource and
      // at the busy resource's slot lock, the second's look), and none was sent on its own: the
      // second's found it moved, and the pass stopped before that lease.
      expect(reads).toBe(3);
      expect((await lease(second.id)).status).toBe('PENDING');
    } finally {
      readingControl.onAcquireCheck = null;
    }
    await pass();
    expect(await lease(waiting.id)).toMatchObject({
      status: 'ACTIVE',
      resourceId: (await lease(holder.id)).resourceId,
    });
    expect((await lease(second.id)).status).toBe('ACTIVE');
  });
});
