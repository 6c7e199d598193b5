import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { AllocatorDeps } from '../../src/allocator/context.js';
import { inUpdateTransaction } from '../../src/allocator/transaction.js';
import { ensureQueue, schedulePass } from '../../src/allocator/jobs.js';
import type { Reservation } from '../../src/queue/port.js';
import type { ClaimedJob } from '../../src/queue/store.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, type Harness } from '../support/allocator-harness.js';

// A pass asked for by a transaction (a release's, most often) is written already claimed by a
// free worker slot of this process and started when the transaction commits: no claim statement,
// no wake-up. Without a free slot, or when another process holds the pass, it is written as
// before and the worker is woken.

class Slot implements Reservation {
  readonly token = `test:${Math.random().toString(36).slice(2)}`;
  readonly lockedUntil = new Date(Date.now() + 60_000);
  started: Omit<ClaimedJob, 'token'> | null = null;
  cancelled = false;
  start(job: Omit<ClaimedJob, 'token'>): void {
    this.started = job;
  }
  cancel(): void {
    this.cancelled = true;
  }
}

describeEachDatabase('a pass reserved by the transaction that asks for it', (kind) => {
  let h: Harness;
  let slot: Slot | null;
  const wakes: Date[] = [];
  let deps: AllocatorDeps;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  beforeEach(async () => {
    await h.reset();
    slot = new Slot();
    wakes.length = 0;
    deps = {
      db: h.db,
      events: h.events,
      registry: h.services.registry,
      options: h.services.options,
      queue: { wake: (at) => wakes.push(at), reserve: () => slot },
    };
  });
  afterAll(() => h.dispose());

  const askForPass = () =>
    inUpdateTransaction(deps, async (ctx) => {
      await ensureQueue(ctx, 'test-slot');
      schedulePass(ctx, 'test-slot');
    });
  const passJob = async () => {
    const [job] = await h.db.prisma.$queryRaw<{ lockedBy: string | null; rerun: boolean; targetId: number }[]>`
      SELECT "lockedBy", rerun, "targetId" FROM "Job" WHERE kind = 'SCHEDULING_PASS'`;
    return job!;
  };

  it('is written claimed and started once the transaction commits, with no wake-up', async () => {
    await askForPass();
    const job = await passJob();
    expect(job.lockedBy).toBe(slot!.token);
    expect(slot!.started).toMatchObject({ kind: 'SCHEDULING_PASS', targetId: job.targetId, attempts: 1 });
    expect(slot!.cancelled).toBe(false);
    expect(wakes).toEqual([]);
  });

  it('is only marked to run again when another process holds it, and the slot is given back', async () => {
    await askForPass();
    await h.db.prisma
      .$executeRaw`UPDATE "Job" SET "lockedBy" = 'elsewhere', rerun = false WHERE kind = 'SCHEDULING_PASS'`;
    slot = new Slot();
    await askForPass();
    const job = await passJob();
    expect(job).toMatchObject({ lockedBy: 'elsewhere', rerun: true });
    expect(slot.started).toBeNull();
    expect(slot.cancelled).toBe(true);
    expect(wakes).toHaveLength(1);
  });

  it('is written unclaimed, and the worker woken, when no slot is free', async () => {
    slot = null;
    await askForPass();
    expect((await passJob()).lockedBy).toBeNull();
    expect(wakes).toHaveLength(1);
  });

  it('gives the slot back when the statement writing the jobs fails, and nothing commits', async () => {
    await expect(
      inUpdateTransaction(deps, async (ctx) => {
        await ensureQueue(ctx, 'test-slot');
        schedulePass(ctx, 'test-slot');
        // The jobs' statement (the transaction's last) fails on this one: nothing commits.
        ctx.jobs.set('bad', { kind: 'NOT_A_KIND' as never, targetId: 1, runAt: ctx.now });
      }),
    ).rejects.toThrow();
    expect(slot!.started).toBeNull();
    expect(slot!.cancelled).toBe(true);
    expect(await h.db.prisma.job.count()).toBe(0);
  });
});
