import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { AllocatorDeps } from '../../src/allocator/context.js';
import { inUpdateTransaction } from '../../src/allocator/transaction.js';
import { scheduleJob } from '../../src/allocator/jobs.js';
import type { JobClaim } from '../../src/queue/port.js';
import { defaultWorkerOptions, QueueWorker } from '../../src/queue/worker.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, fastWorker, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A job asked for again while it ran (a request coming in during a scheduling pass) is kept
// claimed by the transaction that ends it, and the worker runs it again at once in the same slot
// with the same claim: no completion, no claim statement, no other process in between. A bounded
// number of times in a row; and a worker that stops gives such a job back, due at once.
//
// A run whose own commit removes its job's row has ended its claim there, but it still carries out
// what that commit set off (events). The same job may be asked for, and claimed by this very
// process, in that moment: the new run starts only once the earlier one has returned, so that one
// process never runs one key twice at once and the runs' after-commit work keeps their order.

describeEachDatabase('a job asked for again while it ran', (kind) => {
  let h: Harness;
  let deps: AllocatorDeps;
  let worker: QueueWorker | undefined;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  beforeEach(async () => {
    // The harness starts no worker: this test's is the only one claiming.
    await h.reset();
    deps = bareAllocatorDeps(h);
  });
  afterAll(async () => {
    await worker?.stop();
    await h.dispose();
  });

  /** Runs a worker whose lease update asks for itself again during each of its first `asks` runs. */
  const run = (asks: number, during: (runs: number, w: QueueWorker) => void = () => {}) => {
    const runs: { token: string; continues: boolean }[] = [];
    worker = new QueueWorker(
      h.db,
      {
        LEASE_UPDATE: async (job, claim: JobClaim) => {
          runs.push({ token: job.token, continues: claim.continues === true });
          // Another transaction's request, committed while this one runs.
          if (runs.length <= asks) await h.db.prisma.$executeRaw`UPDATE "Job" SET rerun = true WHERE id = ${job.id}`;
          during(runs.length, worker!);
          await inUpdateTransaction(deps, async (ctx) => void (ctx.endsJob = true), claim);
        },
        RESOURCE_UPDATE: async () => {},
        BLUEPRINT_MAINTENANCE: async () => {},
        SCHEDULING_PASS: async () => {},
        WARM_POOL: async () => {},
      },
      { ...defaultWorkerOptions, ...fastWorker, workerId: `runs-again-${kind}`, concurrency: 1 },
    );
    return runs;
  };
  const job = async () =>
    (
      await h.db.prisma.$queryRaw<{ lockedBy: string | null; rerun: boolean }[]>`SELECT "lockedBy", rerun FROM "Job"`
    )[0];
  const insertJob = () =>
    h.db.prisma.$executeRaw`
      INSERT INTO "Job" (key, kind, "targetId", "runAt", attempts) VALUES ('lease:1', 'LEASE_UPDATE', 1, now(), 0)`;

  it('runs again at once with the same claim, then completes', async () => {
    await insertJob();
    const runs = run(3);
    worker!.start();
    await waitFor(async () => (runs.length === 4 && (await job()) === undefined ? true : undefined));
    expect(runs.map((r) => r.continues)).toEqual([false, true, true, true]);
    expect(new Set(runs.map((r) => r.token)).size).toBe(1);
    await worker!.stop();
  });

  it('gives the job back to the queue after a bounded run of reruns; it is claimed again', async () => {
    await insertJob();
    const runs = run(20);
    worker!.start();
    await waitFor(async () => (runs.length === 21 && (await job()) === undefined ? true : undefined));
    expect(runs.slice(0, 16).every((r, i) => r.continues === i > 0)).toBe(true);
    // The 17th run comes from a claim of its own.
    expect(runs[16]!.continues).toBe(false);
    expect(runs[16]!.token).not.toBe(runs[0]!.token);
    await worker!.stop();
  });

  it('a stopping worker leaves the job due at once, unclaimed, its rerun not lost', async () => {
    await insertJob();
    let stopped: Promise<void> | undefined;
    const runs = run(5, (n, w) => {
      if (n === 2) stopped = w.stop();
    });
    worker!.start();
    await waitFor(() => stopped !== undefined);
    await stopped;
    expect(runs).toHaveLength(2);
    expect(await job()).toEqual({ lockedBy: null, rerun: false });
    const [due] = await h.db.prisma.$queryRaw<{ due: boolean }[]>`SELECT "runAt" <= now() AS due FROM "Job"`;
    expect(due!.due).toBe(true);
  });

  it('a job that asks for itself later as its transaction ends it runs again then, woken by its own time', async () => {
    const starts: number[] = [];
    const later = 400;
    worker = new QueueWorker(
      h.db,
      {
        LEASE_UPDATE: async (_job, claim: JobClaim) => {
          starts.push(Date.now());
          await inUpdateTransaction(
            deps,
            async (ctx) => {
              ctx.endsJob = true;
              if (starts.length === 1) scheduleJob(ctx, 'LEASE_UPDATE', 1, new Date(ctx.now.getTime() + later));
            },
            claim,
          );
        },
        RESOURCE_UPDATE: async () => {},
        BLUEPRINT_MAINTENANCE: async () => {},
        SCHEDULING_PASS: async () => {},
        WARM_POOL: async () => {},
      },
      // No sweep or dead-claim look within the test: only the time the run left can wake the worker.
      {
        ...defaultWorkerOptions,
        ...fastWorker,
        sweepIntervalMs: 600_000,
        deadClaimIntervalMs: 600_000,
        workerId: `asks-later-${kind}`,
        concurrency: 1,
      },
    );
    await insertJob();
    worker.start();
    await waitFor(async () => (starts.length === 2 && (await job()) === undefined ? true : undefined));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(later - 50);
    await worker.stop();
  });

  it('a job claimed again while its last run finishes after its commit waits for that run', async () => {
    const steps: string[] = [];
    let runs = 0;
    const claimed = async () => ((await job())?.lockedBy ? true : undefined);
    worker = new QueueWorker(
      h.db,
      {
        LEASE_UPDATE: async (_job, claim: JobClaim) => {
          const n = ++runs;
          steps.push(`start ${n}`);
          // The run's transaction deletes the job's row as it commits (its claim ends there).
          await inUpdateTransaction(deps, async (ctx) => void (ctx.endsJob = true), claim);
          if (n === 1) {
            // After the commit: the job is asked for again, and this worker (a free slot) claims it.
            await insertJob();
            worker!.notify();
            await waitFor(claimed);
          }
          steps.push(`end ${n}`);
        },
        RESOURCE_UPDATE: async () => {},
        BLUEPRINT_MAINTENANCE: async () => {},
        SCHEDULING_PASS: async () => {},
        WARM_POOL: async () => {},
      },
      { ...defaultWorkerOptions, ...fastWorker, workerId: `one-run-per-key-${kind}`, concurrency: 2 },
    );
    await insertJob();
    worker.start();
    await waitFor(async () => (steps.length === 4 ? true : undefined));
    expect(steps).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
    await worker.stop();
  });
});
