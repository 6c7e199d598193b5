import { z } from 'zod';
import type { Lease, Principal, Quota } from '../generated/prisma/client.js';
import type { AllocatorDeps } from '../allocator/context.js';
import { inTransaction } from '../allocator/transaction.js';
import { leaseVisible, may } from '../access/policy.js';
import { notFound } from '../domain-errors.js';
import { schedulePass } from '../allocator/jobs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { readQueue } from '../allocator/scheduler/queue-view.js';
import { rawQueries } from '../db/raw-sql.js';
import type { Actor } from './actor.js';
import { fromZod, inputMessages } from './validation.js';

/** One waiting lease in a type's queue, as `actor` may see it. */
export interface QueueItem {
  position: number;
  band: number;
  priority: number;
  /** Null when the lease is someone else's: the entry is anonymous. */
  lease: Lease | null;
  blocker: { reason: string; [detail: string]: unknown } | null;
}

export interface SchedulingService {
  /** Fair share: a principal's live leases count divided by its weight (1 to 100). Admins only. */
  setPrincipalWeight(actor: Actor, principalId: number, weight: number): Promise<Result<Principal>>;
  /** At most `maxLeases` live leases of the type for the principal; null removes the quota. Admins only. */
  setQuota(
    actor: Actor,
    input: { principalId: number; resourceType: string; maxLeases: number | null },
  ): Promise<Result<Quota | null>>;
  /** A waiting lease's place in `queue` (1-based); null when it is not waiting or too far back. */
  position(lease: Pick<Lease, 'id' | 'resourceType'>): Promise<number | null>;
  /** The type's waiting leases in the order the next pass considers them, the first `first`. */
  queue(actor: Actor, resourceType: string, first: number): Promise<Result<QueueItem[]>>;
}

const weightInput = z.object({
  weight: z.number().int().min(1, 'weight must be 1 to 100').max(100, 'weight must be 1 to 100'),
});
const quotaInput = z.object({
  resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
  maxLeases: z.number().int().min(0).max(1_000_000).nullable(),
});
const queueInput = z.object({
  resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
  first: z.number().int().min(1).max(1_000),
});

export function schedulingService(deps: AllocatorDeps): SchedulingService {
  const { db } = deps;

  /** Types whose leases the principal owns now: a change of its share or quota concerns them. */
  const typesOf = async (principalId: number) =>
    (
      await db.prisma.lease.findMany({
        where: { ownerId: principalId, status: { in: ['PENDING', 'ACQUIRED', 'ACTIVE'] } },
        select: { resourceType: true },
        distinct: ['resourceType'],
      })
    ).map((l) => l.resourceType);

  return {
    async setPrincipalWeight(actor, principalId, weight) {
      const refused = may(actor, { kind: 'scheduling.manage' });
      if (refused) return fail(refused);
      const parsed = weightInput.safeParse({ weight }, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const exists = await db.prisma.principal.findUnique({ where: { id: principalId }, select: { id: true } });
      if (!exists) return fail(notFound('principal', principalId));
      const types = await typesOf(principalId);
      return ok(
        await inTransaction(deps, async (ctx) => {
          const principal = await ctx.tx.principal.update({ where: { id: principalId }, data: { weight } });
          for (const type of types) schedulePass(ctx, type);
          return principal;
        }),
      );
    },

    async setQuota(actor, input) {
      const refused = may(actor, { kind: 'scheduling.manage' });
      if (refused) return fail(refused);
      const parsed = quotaInput.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const { resourceType, maxLeases } = parsed.data;
      const exists = await db.prisma.principal.findUnique({ where: { id: input.principalId }, select: { id: true } });
      if (!exists) return fail(notFound('principal', input.principalId));
      const where = { principalId_resourceType: { principalId: input.principalId, resourceType } };
      return ok(
        await inTransaction(deps, async (ctx) => {
          // A quota raised or removed may let waiting leases through: the type's pass looks again.
          schedulePass(ctx, resourceType);
          if (maxLeases === null) {
            await ctx.tx.quota.deleteMany({ where: { principalId: input.principalId, resourceType } });
            return null;
          }
          return ctx.tx.quota.upsert({
            where,
            create: { principalId: input.principalId, resourceType, maxLeases },
            update: { maxLeases },
          });
        }),
      );
    },

    async position(lease) {
      const entries = await readQueue(await rawQueries(db), deps.options, lease.resourceType);
      return entries.find((entry) => entry.lease.id === lease.id)?.position ?? null;
    },

    async queue(actor, resourceType, first) {
      const parsed = queueInput.safeParse({ resourceType, first }, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const entries = await readQueue(await rawQueries(db), deps.options, parsed.data.resourceType);
      return ok(
        entries.slice(0, parsed.data.first).map(({ lease, position, band }) => {
          const visible = leaseVisible(actor, lease);
          const blocker =
            lease.blocker && typeof lease.blocker === 'object' && 'reason' in lease.blocker
              ? (lease.blocker as QueueItem['blocker'])
              : null;
          // Someone else's wait shows why, not whom it names.
          const shown = visible || !blocker ? blocker : { reason: blocker.reason };
          return { position, band, priority: lease.priority, lease: visible ? lease : null, blocker: shown };
        }),
      );
    },
  };
}
