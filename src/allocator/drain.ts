import type { Resource } from '../generated/prisma/client.js';
import type { LoadedBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';
import { schedulePass, scheduleResourceUpdate } from './jobs.js';
import { logResource } from './transitions.js';

/**
 * Why a live resource takes no new lease because of a drain (an operator's, or its blueprint's
 * config taking it out of service); null when it is not draining. The allocator skips it on this
 * and the dry run gives this as its reason, so the two cannot disagree.
 */
export function drainingReason(resource: Pick<Resource, 'drainingAt' | 'drainedForMaintenance'>): string | null {
  if (resource.drainingAt === null) return null;
  return resource.drainedForMaintenance
    ? "draining for maintenance: its blueprint's config takes it out of service"
    : 'draining: it takes no new lease until it is undrained';
}

/**
 * Starts (`drain` given) or ends (null) a drain of a live resource, under its row lock: the lock
 * every grant share-locks and re-checks, so that no lease lands on it once this committed. Its
 * live leases run to their end; with `release`, its update releases it once none is left. Ending
 * a drain asks the type's scheduling pass for the leases that waited meanwhile.
 */
export async function setDraining(
  ctx: TxContext,
  resource: Resource,
  drain: { release: boolean; maintenance?: boolean } | null,
  authorId: number | null,
): Promise<Resource> {
  const [row] = await ctx.tx.$queryRaw<
    { drainingAt: Date | null; releaseWhenDrained: boolean; drainedForMaintenance: boolean }[]
  >`
    UPDATE "Resource" SET "drainingAt" = ${drain ? ctx.now : null}::timestamp,
      "releaseWhenDrained" = ${drain?.release ?? false}, "drainedForMaintenance" = ${drain?.maintenance ?? false},
      "updatedAt" = ${ctx.now}::timestamp
    WHERE id = ${resource.id}
    RETURNING "drainingAt" AT TIME ZONE 'UTC' AS "drainingAt", "releaseWhenDrained", "drainedForMaintenance"`;
  const updated = { ...resource, ...row };
  if (drain) {
    await logResource(ctx, updated, {
      type: 'resource-draining',
      data: { authorId, release: drain.release, ...(drain.maintenance ? { maintenance: true as const } : {}) },
    });
    if (drain.release) scheduleResourceUpdate(ctx, resource.id);
  } else {
    await logResource(ctx, updated, { type: 'resource-undrained', data: { authorId } });
  }
  schedulePass(ctx, resource.type);
  return updated;
}

/**
 * Drains the blueprint's live resources its config takes out of service (implementation hook
 * `inMaintenance`: a host-pool binding in maintenance) and undrains those it put back, in the
 * transaction that saved the config. A drain an operator asked for is left alone either way.
 */
export async function drainForMaintenance(ctx: TxContext, loaded: LoadedBlueprint, authorId: number | null) {
  const inMaintenance = loaded.implementation.inMaintenance;
  if (!inMaintenance) return;
  // Row locks in id order, as setDraining's callers take them: a grant in flight finishes first.
  const rows = await ctx.tx.$queryRaw<Resource[]>`
    SELECT * FROM "Resource" WHERE "blueprintId" = ${loaded.blueprint.id} AND status IN ('PENDING', 'ACTIVE')
    ORDER BY id FOR NO KEY UPDATE`;
  for (const resource of rows) {
    const wanted = inMaintenance(loaded.blueprint, resource);
    const release = wanted === 'retired';
    // A retired resource is released once drained, also when it was already drained for maintenance.
    if (
      wanted &&
      (resource.drainingAt === null || (release && resource.drainedForMaintenance && !resource.releaseWhenDrained))
    )
      await setDraining(ctx, resource, { release, maintenance: true }, authorId);
    else if (!wanted && resource.drainingAt !== null && resource.drainedForMaintenance)
      await setDraining(ctx, resource, null, authorId);
  }
}
