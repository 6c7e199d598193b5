import type { Resource } from '../generated/prisma/client.js';
import type { TxContext } from './context.js';
import { schedulePass, scheduleResourceUpdate } from './jobs.js';
import { logResource } from './transitions.js';

/**
 * Starts (`drain` given) or ends (null) a drain of a live resource, under its row lock: the lock
 * every grant share-locks and re-checks, so that no lease lands on it once this committed. Its
 * live leases run to their end; with `release`, its update releases it once none is left. Ending
 * a drain asks the type's scheduling pass for the leases that waited meanwhile.
 */
export async function setDraining(
  ctx: TxContext,
  resource: Resource,
  drain: { release: boolean } | null,
  authorId: number | null,
): Promise<Resource> {
  const [row] = await ctx.tx.$queryRaw<{ drainingAt: Date | null; releaseWhenDrained: boolean }[]>`
    UPDATE "Resource" SET "drainingAt" = ${drain ? ctx.now : null}::timestamp,
      "releaseWhenDrained" = ${drain?.release ?? false}, "updatedAt" = ${ctx.now}::timestamp
    WHERE id = ${resource.id}
    RETURNING "drainingAt" AT TIME ZONE 'UTC' AS "drainingAt", "releaseWhenDrained"`;
  const updated = { ...resource, ...row };
  if (drain) {
    await logResource(ctx, updated, { type: 'resource-draining', data: { authorId, release: drain.release } });
    if (drain.release) scheduleResourceUpdate(ctx, resource.id);
  } else {
    await logResource(ctx, updated, { type: 'resource-undrained', data: { authorId } });
  }
  schedulePass(ctx, resource.type);
  return updated;
}
