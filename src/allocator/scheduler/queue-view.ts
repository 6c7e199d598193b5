import type { Lease } from '../../generated/prisma/client.js';
import type { RawQueries } from '../../db/statements.js';
import type { AllocatorOptions } from '../options.js';
import { band, policyOrder, type Owner } from './policy-order.js';

/** The longest queue shown: past this, positions are not computed (the rest waits behind). */
export const QUEUE_VIEW_LIMIT = 1_000;

export interface QueueEntry {
  lease: Lease;
  /** 1-based place in the order the next pass considers the type's waiting leases in. */
  position: number;
  /** Priority plus aging, as the pass sees it now. */
  band: number;
}

/**
 * The waiting leases of a type in the order the next pass will consider them (policy-order.ts:
 * band, fair share assuming each is granted in turn, arrival), each with the blocker it last
 * recorded. Read outside any turn: a snapshot, which the next pass may already have changed.
 */
export async function readQueue(
  db: RawQueries,
  options: Pick<AllocatorOptions, 'agingIntervalMs' | 'clock'>,
  resourceType: string,
): Promise<QueueEntry[]> {
  const leases = await db.$queryRaw<Lease[]>`
    SELECT * FROM "Lease" WHERE "resourceType" = ${resourceType} AND status = 'PENDING'
    ORDER BY id LIMIT ${QUEUE_VIEW_LIMIT}::int`;
  const ownerIds = [...new Set(leases.flatMap((l) => (l.ownerId === null ? [] : [l.ownerId])))];
  const owners = await db.$queryRaw<(Owner & { id: number })[]>`
    SELECT p.id, p.weight,
      (SELECT count(*)::int FROM "Lease" l
       WHERE l."resourceType" = ${resourceType} AND l."ownerId" = p.id AND l.status IN ('ACQUIRED', 'ACTIVE')) AS live
    FROM "Principal" p WHERE p.id = ANY(${ownerIds}::int[])`;
  const now = options.clock();
  const settings = { agingIntervalMs: options.agingIntervalMs };
  const byOwner = new Map(owners.map((o) => [o.id, o]));
  // A gang is one unit of the order: its parts follow its first one.
  const gangs = new Map<number, Lease[]>();
  for (const lease of leases)
    if (lease.gangId !== null) gangs.set(lease.gangId, [...(gangs.get(lease.gangId) ?? []), lease]);
  const partsOf = (lease: Lease) => (lease.gangId === null ? [lease] : (gangs.get(lease.gangId) ?? [lease]));
  const units = leases.filter((l) => partsOf(l)[0] === l);
  const ordered = policyOrder(
    units.map((lease) => ({
      id: lease.id,
      priority: lease.priority,
      createdAt: lease.createdAt,
      ownerId: lease.ownerId,
      size: partsOf(lease).length,
      lease,
    })),
    byOwner,
    now,
    settings,
  );
  const entries: QueueEntry[] = [];
  for (const unit of ordered) {
    for (const lease of partsOf(unit.lease))
      entries.push({ lease, position: entries.length + 1, band: band(lease, now, settings) });
  }
  return entries;
}
