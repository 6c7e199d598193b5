import type { Lease } from '../../generated/prisma/client.js';
import type { TxContext } from '../context.js';
import type { Blocker } from '../waiting.js';
import { quotaBlocker } from './quota.js';
import { readOwner } from './read.js';

/**
 * What the owner's quotas make a gang wait for, or null: nothing. A gang is granted whole, so each
 * type it asks for counts the gang's parts of that type against the owner's quota of that type,
 * whichever type's pass looks at it. `passType`: that pass's type, whose quota and live count
 * (with what the pass granted so far) the pass knows; the other types' are read, under their
 * turns, which the pass holds for the gang.
 *
 * More parts of a type than the quota can never be granted: requestGang refuses such a gang, and
 * one left so by a quota lowered while it waits says so (gang-over-quota), whatever the owner
 * holds, until the quota is raised; that comes first, since nothing but an administrator ends
 * it. Otherwise the owner's live leases leave too little room for the parts (quota).
 */
export async function gangQuotaBlocker(
  ctx: TxContext,
  passType: { resourceType: string; quota: number | null; live: number },
  ownerId: number | null,
  parts: readonly Lease[],
): Promise<Blocker | null> {
  if (ownerId === null) return null;
  const asked = new Map<string, number>();
  for (const part of parts) asked.set(part.resourceType, (asked.get(part.resourceType) ?? 0) + 1);
  const quotas: { resourceType: string; quota: number | null; live: number }[] = [];
  if (asked.has(passType.resourceType)) quotas.push(passType);
  for (const resourceType of [...asked.keys()].filter((t) => t !== passType.resourceType).sort()) {
    const owner = await readOwner(ctx.tx, resourceType, ownerId);
    quotas.push({ resourceType, quota: owner?.quota ?? null, live: owner?.live ?? 0 });
  }
  const over = quotas.find(({ resourceType, quota }) => quota !== null && asked.get(resourceType)! > quota);
  if (over)
    return {
      reason: 'gang-over-quota',
      resourceType: over.resourceType,
      quota: over.quota,
      parts: asked.get(over.resourceType),
    };
  for (const { resourceType, quota, live } of quotas) {
    const blocker = quotaBlocker(quota, live, asked.get(resourceType)!);
    if (blocker) return { ...blocker, resourceType, parts: asked.get(resourceType) };
  }
  return null;
}
