import type { Lease, Resource } from '../generated/prisma/client.js';
import type { OwnedLeaseRequest, OwnedLeases } from '../blueprints/implementation.js';
import { ensureQueue, schedulePass } from './jobs.js';
import { blueprintPrincipalId } from './blueprint-principal.js';
import { sendCommand } from './commands.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { inTransaction } from './transaction.js';
import { writeLog, type LogData } from './logs.js';
import { liveLeaseStatuses } from './state-machines.js';
import { logResource } from './transitions.js';

/**
 * The leases a resource holds for itself. They are owned and authorized by its blueprint's
 * principal, so the blueprint must be authorized on whatever they lease from; every transition of
 * one schedules an update of the resource (transitions.ts), so setup waits need no polling.
 */
export function ownedLeases(deps: AllocatorDeps, resource: Resource): OwnedLeases {
  return {
    list: () => deps.db.prisma.lease.findMany({ where: { ownerResourceId: resource.id }, orderBy: { id: 'asc' } }),

    request: (input: OwnedLeaseRequest) =>
      inTransaction(deps, async (ctx): Promise<Lease> => {
        const principalId = await blueprintPrincipalId(ctx.tx, resource.blueprintId);
        const lease = await ctx.tx.lease.create({
          data: {
            resourceType: input.resourceType,
            attributes: (input.attributes ?? {}) as object,
            allowedBlueprintIds: input.blueprintIds ?? [],
            ownerId: principalId,
            authorizingPrincipalId: principalId,
            ownerResourceId: resource.id,
            createdAt: ctx.now,
          },
        });
        await writeLog(
          ctx,
          { type: 'lease-requested', data: { resourceType: lease.resourceType, until: null }, leaseId: lease.id },
          { lease: lease.status },
        );
        await logResource(ctx, resource, {
          type: 'resource-lease-requested',
          data: { leaseId: lease.id, resourceType: lease.resourceType },
          leaseId: lease.id,
        });
        await ensureQueue(ctx, lease.resourceType);
        schedulePass(ctx, lease.resourceType);
        return lease;
      }),

    release: (leaseId: number) =>
      inTransaction(deps, async (ctx) => {
        const lease = await ctx.tx.lease.findUnique({ where: { id: leaseId } });
        if (!lease || lease.ownerResourceId !== resource.id)
          throw new Error(`lease ${leaseId} is not held by resource ${resource.id}`);
        if (!liveLeaseStatuses.includes(lease.status)) return;
        await sendCommand(ctx, 'RELEASE', { leaseId }, null);
        await writeLog(
          ctx,
          { type: 'lease-release-requested', data: { authorId: null }, leaseId },
          { lease: lease.status },
        );
      }),

    async whyBroken(leaseId: number) {
      const log = await deps.db.prisma.log.findFirst({
        where: { leaseId, type: 'lease-broken', lease: { ownerResourceId: resource.id } },
        orderBy: { id: 'desc' },
      });
      return log ? (log.data as LogData['lease-broken']) : null;
    },
  };
}

/** Destroying a resource ends what it held: each live lease it owns is told to release. */
export async function releaseOwnedLeases(ctx: TxContext, resourceId: number): Promise<void> {
  const owned = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Lease" WHERE "ownerResourceId" = ${resourceId} AND status IN ('PENDING', 'ACQUIRED', 'ACTIVE')`;
  for (const { id } of owned) await sendCommand(ctx, 'RELEASE', { leaseId: id }, null);
}
