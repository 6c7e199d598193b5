import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { HEADS_PER_DEMAND, OLDEST_PER_PASS } from '../../src/allocator/scheduler/read.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';

// A pass reads a bounded number of waiting leases of each shape, so one that served some asks
// for another pass at once: more of the shape may wait than it read. One whose full read of a
// shape all stays waiting must not: the next read would be the same, and a queue with such a
// backlog would run every pass twice. No worker runs here; each pass is the test's own.

describeEachDatabase('a pass asks for another at once only when the next would read further', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  const request = (label: string) =>
    h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { label } }).then(unwrap);
  const blueprint = (label: string, config: Record<string, unknown>) =>
    h.services.blueprints
      .create(h.system, { name: label, implementation: 'test', config: { label, ...config } })
      .then(unwrap);

  /** Runs one pass with the type's own job cleared, and returns when that job is due after it, if at all. */
  async function pass(): Promise<{ dueInMs: number | null }> {
    const queueId = await queueIdOf(h, 'test-slot');
    const key = `pass:${queueId}`;
    await h.db.prisma.$executeRaw`DELETE FROM "Job" WHERE key = ${key}`;
    const before = Date.now();
    await runSchedulingPass(bareAllocatorDeps(h), queueId);
    const [job] = await h.db.prisma.$queryRaw<{ runAt: Date }[]>`SELECT "runAt" FROM "Job" WHERE key = ${key}`;
    return { dueInMs: job ? job.runAt.getTime() - before : null };
  }
  const status = async (id: number) => (await h.db.prisma.lease.findUniqueOrThrow({ where: { id } })).status;

  it('a backlog nothing can serve, its shape read in full, and a lease granted beside it: not at once', async () => {
    await blueprint('busy', { exclusive: true, maxResources: 1 });
    await blueprint('free', {});
    const holder = await request('busy');
    await pass();
    expect(await status(holder.id)).not.toBe('PENDING');
    const backlog = [];
    for (let i = 0; i < HEADS_PER_DEMAND + 4; i++) backlog.push(await request('busy'));
    const served = await request('free');

    const { dueInMs } = await pass();
    expect(await status(served.id)).not.toBe('PENDING');
    for (const lease of backlog) expect(await status(lease.id)).toBe('PENDING');
    // The backlog's patient wait brings the pass back after idleRetryMs, not at once.
    expect(dueInMs).not.toBeNull();
    expect(dueInMs!).toBeGreaterThan(h.services.options.idleRetryMs / 2);
  });

  it('a shape read in full with some of it granted: at once, and the next pass serves the rest', async () => {
    await blueprint('free', {});
    // More than a pass reads in all (its shapes' heads and the type's oldest).
    const leases = [];
    for (let i = 0; i < Math.max(HEADS_PER_DEMAND, OLDEST_PER_PASS) + 4; i++) leases.push(await request('free'));

    const first = await pass();
    expect(first.dueInMs).not.toBeNull();
    expect(first.dueInMs!).toBeLessThan(h.services.options.idleRetryMs / 2);
    const statuses = await Promise.all(leases.map((l) => status(l.id)));
    expect(statuses.filter((s) => s === 'PENDING')).toHaveLength(4);

    await pass();
    for (const lease of leases) expect(await status(lease.id)).not.toBe('PENDING');
  });
});
