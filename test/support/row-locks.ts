import type { PrismaClient } from '../../src/generated/prisma/client.js';
import type { Harness } from './allocator-harness.js';
import { unwrap } from './allocator-harness.js';
import { waitFor } from './wait.js';

type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** Whether some session waits for a lock held by the transaction in PostgreSQL backend `pid`. */
export async function someoneWaitsFor(prisma: PrismaClient, pid: number): Promise<boolean> {
  const [row] = await prisma.$queryRaw<{ waiting: number }[]>`
    SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`;
  return row!.waiting > 0;
}

/**
 * Plays a lock-order race deterministically: a transaction locks lease `leaseId`'s row, `contender`
 * starts and is seen waiting for it, then `inTransaction` takes the transaction's next lock or write
 * before it commits. Had the two taken their locks in opposite orders, PostgreSQL would fail the
 * contender with `deadlock detected`. Resolves with the contender's result, or its error as a value.
 */
export async function contendWithHeldLease(
  prisma: PrismaClient,
  leaseId: number,
  contender: () => Promise<unknown>,
  inTransaction: (tx: Transaction) => Promise<unknown>,
): Promise<unknown> {
  let outcome: Promise<unknown> | undefined;
  await prisma.$transaction(
    async (tx) => {
      // Should the two deadlock, the contender is the one PostgreSQL fails: it waited first, and
      // this transaction looks for a deadlock only after a longer wait of its own.
      await tx.$executeRaw`SET LOCAL deadlock_timeout = '10s'`;
      const [{ pid }] = await tx.$queryRaw<[{ pid: number }]>`
        SELECT pg_backend_pid() AS pid FROM "Lease" WHERE id = ${leaseId} FOR NO KEY UPDATE`;
      outcome = contender().catch((error: unknown) => error);
      await waitFor(() => someoneWaitsFor(prisma, pid));
      await inTransaction(tx);
    },
    { timeout: 30_000 },
  );
  return outcome!;
}

/** A blueprint of two exclusive slots and a gang of both, its parts in id order. No worker runs: they stay PENDING. */
export async function twoSlotGang(h: Harness, request: { heartbeatSeconds?: number } = {}) {
  unwrap(
    await h.services.blueprints.create(h.system, {
      name: 'slots',
      implementation: 'test',
      config: { exclusive: true, maxResources: 2 },
    }),
  );
  const parts = unwrap(
    await h.services.leases.requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: 2 }], ...request }),
  ).sort((a, b) => a.id - b.id);
  return { first: parts[0]!, second: parts[1]! };
}
