import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { AllocatorDeps, TxContext } from '../../src/allocator/context.js';
import { inUpdateTransaction } from '../../src/allocator/transaction.js';
import { ensureQueue, scheduleJob, schedulePass } from '../../src/allocator/jobs.js';
import type { JobClaim } from '../../src/queue/port.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, type Harness } from '../support/allocator-harness.js';

// A handler whose job ends with its transaction (a scheduling pass, a lease update with no setup
// to follow) completes the job in the transaction's last statement, instead of leaving it to the
// worker's completion a round trip later: deletes its row when nothing asked for the job again,
// keeps it claimed when it is due again now, releases it for its time when it is wanted later.
// Only if the transaction commits.

describeEachDatabase('a job that ends with its transaction', (kind) => {
  let h: Harness;
  let deps: AllocatorDeps;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  beforeEach(async () => {
    await h.reset();
    deps = bareAllocatorDeps(h);
  });
  afterAll(() => h.dispose());

  /** The lease update job of lease 1 (a target needs no row of its own), held by this test. */
  const claimed = async (rerun = false, runAt = new Date()): Promise<JobClaim> => {
    const [row] = await h.db.prisma.$queryRaw<{ id: bigint; runAt: Date }[]>`
      INSERT INTO "Job" (key, kind, "targetId", "runAt", "lockedBy", "lockedUntil", attempts, rerun)
      VALUES ('lease:1', 'LEASE_UPDATE', 1, ${runAt}, 'test-claim', now() + interval '1 hour', 1, ${rerun})
      RETURNING id, "runAt"`;
    const job = { id: row!.id, key: 'lease:1', kind: 'LEASE_UPDATE' as const, targetId: 1, runAt: row!.runAt };
    return { job: { ...job, attempts: 1, token: 'test-claim' }, carried: null, rescheduleAt: null };
  };
  const jobs = async () =>
    (
      await h.db.prisma.$queryRaw<{ key: string; lockedBy: string | null; rerun: boolean }[]>`
        SELECT key, "lockedBy", rerun FROM "Job" ORDER BY key`
    ).map((row) => `${row.key}${row.lockedBy ? ' (held)' : ''}${row.rerun ? ' (rerun)' : ''}`);
  const runAt = async () =>
    (await h.db.prisma.$queryRaw<{ runAt: Date }[]>`SELECT "runAt" FROM "Job" WHERE key = 'lease:1'`)[0]?.runAt;
  const ending = (claim: JobClaim, body: (ctx: TxContext) => Promise<void> | void = () => {}) =>
    inUpdateTransaction(
      deps,
      async (ctx) => {
        ctx.endsJob = true;
        await body(ctx);
      },
      claim,
    );

  it('deletes its row in the last statement, alone or with the jobs the transaction asks for', async () => {
    const alone = await claimed();
    await ending(alone);
    expect(alone.completedAt).toBeDefined();
    expect(await jobs()).toEqual([]);

    const withOthers = await claimed();
    await ending(withOthers, async (ctx) => {
      await ensureQueue(ctx, 'test-slot');
      schedulePass(ctx, 'test-slot');
    });
    expect(withOthers.completedAt).toBeDefined();
    expect(await jobs()).toEqual([expect.stringMatching(/^pass:\d+$/)]);
  });

  it('keeps the row claimed to run again at once when the job was asked for again while it ran', async () => {
    // Marked to run again while it ran (another transaction's request), for now.
    const rerun = await claimed(true);
    await ending(rerun);
    expect(rerun.completedAt).toBeUndefined();
    expect(rerun.again).toBe(true);
    expect(await jobs()).toEqual(['lease:1 (held)']);
    await h.reset();

    // Asked for at a later time: released for that time in the same statement.
    const at = new Date(Date.now() + 60_000);
    const later = await claimed(true, at);
    await ending(later);
    expect(later.completedAt).toBeDefined();
    expect(later.again).toBeFalsy();
    expect(later.rescheduleAt).toEqual(at);
    expect(await jobs()).toEqual(['lease:1']);
    expect(await runAt()).toEqual(at);
    await h.reset();

    // Not if the transaction does not commit.
    const failing = await claimed(true);
    await expect(
      ending(failing, (ctx) => void ctx.jobs.set('bad', { kind: 'NOT_A_KIND' as never, targetId: 1, runAt: ctx.now })),
    ).rejects.toThrow();
    expect(failing.again).toBeFalsy();
    expect(await jobs()).toEqual(['lease:1 (held) (rerun)']);
  });

  it('completes the job for the time it asks for itself, the earliest of that and a request while it ran', async () => {
    // Asked for later by its own transaction: released for that time, due then for anyone.
    const own = await claimed();
    const later = new Date(Date.now() + 60_000);
    await ending(own, (ctx) => scheduleJob(ctx, 'LEASE_UPDATE', 1, later));
    expect(own.completedAt).toBeDefined();
    expect(own.again).toBeFalsy();
    expect(own.rescheduleAt).toEqual(later);
    expect(await jobs()).toEqual(['lease:1']);
    expect(await runAt()).toEqual(later);
    await h.reset();

    // Asked for later while it ran and later still by itself, or the other way round: the earlier.
    const sooner = new Date(Date.now() + 30_000);
    for (const [whileRunning, itself] of [
      [sooner, later],
      [later, sooner],
    ] as const) {
      const both = await claimed(true, whileRunning);
      await ending(both, (ctx) => scheduleJob(ctx, 'LEASE_UPDATE', 1, itself));
      expect(both.rescheduleAt).toEqual(sooner);
      expect(await jobs()).toEqual(['lease:1']);
      expect(await runAt()).toEqual(sooner);
      await h.reset();
    }

    // Asked for now by itself, or now while it ran with a later time of its own: kept claimed and
    // run again at once, with no completion and no claim in between.
    for (const rerun of [false, true]) {
      const now = await claimed(rerun);
      await ending(now, (ctx) => scheduleJob(ctx, 'LEASE_UPDATE', 1, rerun ? later : ctx.now));
      expect(now.completedAt).toBeUndefined();
      expect(now.again).toBe(true);
      expect(await jobs()).toEqual(['lease:1 (held)']);
      await h.reset();
    }
  });

  it('leaves the row to the worker when more of the job runs after the transaction', async () => {
    const going = await claimed();
    const later = new Date(Date.now() + 60_000);
    await inUpdateTransaction(deps, async (ctx) => scheduleJob(ctx, 'LEASE_UPDATE', 1, later), going);
    expect(going.completedAt).toBeUndefined();
    expect(going.rescheduleAt).toEqual(later);
    expect(await jobs()).toEqual(['lease:1 (held)']);
  });

  it('keeps its row when the transaction does not commit', async () => {
    const failing = await claimed();
    await expect(
      ending(failing, (ctx) => {
        // The last statement fails on this one: nothing commits, the delete included.
        ctx.jobs.set('bad', { kind: 'NOT_A_KIND' as never, targetId: 1, runAt: ctx.now });
      }),
    ).rejects.toThrow();
    expect(failing.completedAt).toBeUndefined();
    expect(await jobs()).toEqual(['lease:1 (held)']);
  });
});
