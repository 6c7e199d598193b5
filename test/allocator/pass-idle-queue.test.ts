import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import type { JobClaim } from '../../src/queue/port.js';
import { IdleQueues } from '../../src/allocator/scheduler/idle-queues.js';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import {
  bareAllocatorDeps,
  createHarness,
  queueIdOf,
  startWaitingForTurn,
  unwrap,
  withTurnHeld,
  type Harness,
} from '../support/allocator-harness.js';

// A pass asked for while its type's queue is idle (most often by a release, with nothing waiting)
// first looks whether any lease waits, without the type's turn; when one does, it takes the turn
// as any pass does. The turn is held here by another connection: PostgreSQL only.

describePostgres('a pass on an idle queue', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql');
  });
  afterAll(() => h.dispose());

  it('finds nothing waiting without taking the turn, and takes it once a lease waits', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'one-slot',
        implementation: 'test',
        config: { exclusive: true, maxResources: 1 },
      }),
    );
    const idleQueues = new IdleQueues();
    const deps = bareAllocatorDeps(h, { idleQueues });
    // No worker runs: every pass below is this test's.
    const first = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const queueId = await queueIdOf(h, 'test-slot');
    await runSchedulingPass(deps, queueId);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('ACTIVE');
    expect(idleQueues.has(queueId)).toBe(true);

    let second = 0;
    await withTurnHeld(h, queueId, async () => {
      // Nothing waits: the pass returns although the turn is held.
      await runSchedulingPass(deps, queueId);
      expect(idleQueues.has(queueId)).toBe(true);

      // A lease waits now (committed on another connection): the pass waits for the turn.
      second = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' })).id;
      return startWaitingForTurn(h, () => runSchedulingPass(deps, queueId));
    });
    // It ran once the turn was free: the second lease waits for the one slot, and the queue is
    // no longer idle.
    const waiting = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: second } });
    expect(waiting.status).toBe('PENDING');
    expect(waiting.blocker).not.toBeNull();
    expect(idleQueues.has(queueId)).toBe(false);
  });

  it('completes its own job in the statement that finds nothing waiting, unless it was asked for again', async () => {
    // A database of its own: the test above leaves a lease waiting on its type.
    const h = await createHarness('postgresql');
    onTestFinished(() => h.dispose());
    const idleQueues = new IdleQueues();
    const deps = bareAllocatorDeps(h, { idleQueues });
    unwrap(await h.services.blueprints.create(h.system, { name: 'roomy', implementation: 'test', config: {} }));
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const queueId = await queueIdOf(h, 'test-slot');
    await runSchedulingPass(deps, queueId);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('ACTIVE');
    expect(idleQueues.has(queueId)).toBe(true);

    // The pass's job as a worker holds it (no worker runs here).
    const claimed = async (rerun: boolean): Promise<JobClaim> => {
      await h.db.prisma.$executeRaw`DELETE FROM "Job" WHERE key = ${`pass:${queueId}`}`;
      const [row] = await h.db.prisma.$queryRaw<{ id: bigint; runAt: Date }[]>`
        INSERT INTO "Job" (key, kind, "targetId", "runAt", "lockedBy", "lockedUntil", attempts, rerun)
        VALUES (${`pass:${queueId}`}, 'SCHEDULING_PASS', ${queueId}, now(), 'test-claim', now() + interval '1 hour', 1, ${rerun})
        RETURNING id, "runAt"`;
      const job = {
        id: row!.id,
        key: `pass:${queueId}`,
        kind: 'SCHEDULING_PASS' as const,
        targetId: queueId,
        runAt: row!.runAt,
        attempts: 1,
        token: 'test-claim',
      };
      return { job, carried: null, rescheduleAt: null };
    };
    const jobRows = async () =>
      (
        await h.db.prisma.$queryRaw<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM "Job" WHERE key = ${`pass:${queueId}`}`
      )[0]!.n;

    // Nothing waits: the look removed the row, and the worker is told not to complete it.
    const idle = await claimed(false);
    await runSchedulingPass(deps, queueId, idle);
    expect(idle.completedAt).toBeDefined();
    expect(await jobRows()).toBe(0);

    // Asked for again while it ran: the row stays for the worker's completion to make due.
    const again = await claimed(true);
    await runSchedulingPass(deps, queueId, again);
    expect(again.completedAt).toBeUndefined();
    expect(await jobRows()).toBe(1);

    // A lease waits: the pass runs, and ends its job in its own transaction (job-ends-with-transaction.test.ts).
    const waiting = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const busy = await claimed(false);
    await runSchedulingPass(deps, queueId, busy);
    expect(busy.completedAt).toBeDefined();
    expect(await jobRows()).toBe(0);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: waiting.id } })).status).toBe('ACTIVE');
  });
});
