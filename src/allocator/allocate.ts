import type { Lease, Resource } from '../generated/prisma/client.js';
import { limitSlotKey } from '../blueprints/implementation.js';
import { scheduleResourceUpdate } from '../queue/jobs.js';
import { acquireOn, type AcquireOutcome } from './acquire.js';
import { candidateBlueprints, type LoadedBlueprint } from './blueprints.js';
import { sendCommand } from './commands.js';
import type { TxContext } from './context.js';
import { PermanentFailure, TemporaryFailure } from './errors.js';
import { scheduleHealthCheck } from './health.js';
import type { SlotLockHolder } from './logs.js';
import { allocationQueries } from './queries.js';
import { acquireSlotLocks, heldKeys, heldSlotLocks } from './slot-locks.js';
import { breakLease } from './lease-end.js';
import { logLease, logResource, transitionResource } from './transitions.js';
import { olderWaitingLease } from './queue-order.js';
import { sameWait, waitAndRetry, type Blocker } from './waiting.js';
import { wakeWaitingLeases } from './wake.js';

interface Candidate {
  resource: Resource;
  loaded: LoadedBlueprint;
  liveLeases: number;
}

/**
 * The update of a PENDING lease: drydock-spec.md "Allocating a lease", step for step. Every exit
 * either acquires, breaks the lease with a logged reason, or waits with a recorded blocker and a
 * scheduled retry; nothing leaves a lease PENDING without a job that will look at it again.
 */
export async function allocateLease(ctx: TxContext, lease: Lease): Promise<Lease> {
  const { tx, deps } = ctx;
  // 1. Candidate blueprints.
  const blueprints = await candidateBlueprints(tx, deps.registry, lease);
  if (!blueprints.ok) return breakLease(ctx, lease, blueprints.reason, blueprints.message);
  const { candidates } = blueprints;

  // Request order: an older lease waiting for the same thing goes first.
  const ahead = await olderWaitingLease(ctx, lease);
  if (ahead !== null) return waitAndRetry(ctx, lease, { reason: 'queued-behind', leaseId: ahead }, { patient: true });

  // 2–3. Candidate resources, split into free and used.
  const resources = await candidateResources(ctx, lease, candidates);
  const free = resources.filter(
    (c) =>
      c.liveLeases === 0 ||
      !c.loaded.implementation.shouldAllocateSupplementalResource(c.loaded.blueprint, c.resource, lease),
  );
  const used = resources.filter((c) => !free.includes(c));
  const lockFailures: SlotLockHolder[] = [];
  // A wait that no wake-up is certain to end: retried on the exponential backoff, not patiently.
  let retrySoon = false;
  const tryAll = async (list: Candidate[]): Promise<Lease | null> => {
    // One look at every lock this lease would need on every candidate, instead of a failed insert
    // per busy resource: with exclusive resources nearly all of them are busy while leases queue.
    const plans = list.map((candidate) => ({
      candidate,
      keys: candidate.loaded.implementation.acquireLease(candidate.loaded.blueprint, candidate.resource, lease)
        .slotLocks,
    }));
    const held = await heldSlotLocks(
      tx,
      plans.flatMap((p) => p.keys),
    );
    for (const { candidate, keys } of plans) {
      const blocking = keys.flatMap((key) => held.get(key) ?? []);
      if (blocking.length > 0) {
        lockFailures.push(...blocking);
        continue;
      }
      const outcome = await acquireOn(ctx, lease, candidate.resource, candidate.loaded);
      if (outcome.ok) return acquired(ctx, outcome);
      if (outcome.reason === 'slot-lock') lockFailures.push(...outcome.holders);
    }
    return null;
  };
  const onFree = await tryAll(free);
  if (onFree) return onFree;

  // 4. A lease builds at most one resource at a time.
  const [building] = await tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Resource" WHERE "allocatedForLeaseId" = ${lease.id} AND status = 'PENDING' LIMIT 1`;
  if (building) return waitAndRetry(ctx, lease, { reason: 'waiting-for-resource-activation', resourceId: building.id });

  // 5. Allocate a new resource where a blueprint can allocate now.
  const queries = allocationQueries(tx);
  for (const candidate of candidates) {
    const { blueprint, implementation } = candidate;
    let canNow: boolean;
    try {
      canNow = await implementation.canAllocateNow(blueprint, lease, queries);
    } catch (error) {
      const failed = await hookFailed(ctx, lease, blueprint.id, error);
      if (failed) return failed;
      retrySoon = true;
      continue;
    }
    if (!canNow) continue;
    const allocation = await allocateResource(ctx, lease, candidate);
    if (allocation.kind === 'failed') return allocation.lease;
    if (allocation.kind === 'temporary-failure') {
      retrySoon = true;
      continue;
    }
    if (allocation.kind === 'no-capacity') continue;
    if (allocation.kind === 'conflict') {
      lockFailures.push(...allocation.holders);
      retrySoon = true;
      continue;
    }
    const acceptsNow = await implementation.canAcquireLeaseOn(blueprint, allocation.resource, lease, queries);
    const outcome = acceptsNow ? await acquireOn(ctx, lease, allocation.resource, candidate) : null;
    if (outcome?.ok) return acquired(ctx, outcome);
    // A blueprint may refuse leases on its PENDING resources (the mystery box): wait for it to open.
    return waitAndRetry(ctx, lease, { reason: 'waiting-for-resource-activation', resourceId: allocation.resource.id });
  }

  // 6. Share a resource that is already in use.
  const onUsed = await tryAll(used);
  if (onUsed) return onUsed;

  const lockBlocker: Blocker | null =
    lockFailures.length > 0
      ? {
          reason: 'slot-lock-failure',
          keys: [...new Set(lockFailures.map((h) => h.key))].sort(),
          holders: lockFailures,
        }
      : null;
  if (lockBlocker && !sameWait(lease.blocker, lockBlocker)) {
    await logLease(ctx, lease, { type: 'slot-lock-failure', data: { holders: lockFailures } });
  }

  // 7. Reclaim an idle resource whose capacity could be rebuilt for this lease.
  const reclaimable = await reclaimableResource(ctx, candidates, resources);
  if (reclaimable) {
    await sendCommand(ctx, 'RECLAIM', { resourceId: reclaimable.id }, null);
    await logLease(ctx, lease, {
      type: 'reclaim-requested',
      data: { resourceId: reclaimable.id },
      resourceId: reclaimable.id,
    });
    return waitAndRetry(ctx, lease, { reason: 'waiting-for-reclaim', resourceId: reclaimable.id });
  }

  // 8. Nothing to do but wait. Capacity that is merely busy is certain to wake us when it frees
  // (a lease or resource destroyed wakes the oldest waiters), so that wait is patient; a lost
  // allocation race or a temporary failure retries soon, since nothing will wake us for it.
  return waitAndRetry(ctx, lease, lockBlocker ?? { reason: 'no-capacity' }, { patient: !retrySoon });
}

/**
 * A lease got a resource it can share with others: the next waiting leases of its type may fit
 * there too, so they are woken (and each one that gets through wakes more, fanning out). An
 * exclusive acquisition leaves no room, so it wakes no one: the next waiter is woken when this
 * lease frees its slot.
 */
async function acquired(ctx: TxContext, outcome: Extract<AcquireOutcome, { ok: true }>): Promise<Lease> {
  if (outcome.shared) await wakeWaitingLeases(ctx, outcome.lease.resourceType);
  return outcome.lease;
}

/**
 * Policy: least-loaded first (fewest leases on it), then oldest, so that load spreads over a pool
 * and the same lease asked twice sees the same order.
 */
async function candidateResources(ctx: TxContext, lease: Lease, candidates: LoadedBlueprint[]): Promise<Candidate[]> {
  const byId = new Map(candidates.map((c) => [c.blueprint.id, c]));
  const resources = await ctx.tx.$queryRaw<(Resource & { liveLeases: number })[]>`
    SELECT r.*, (SELECT count(*) FROM "Lease" l WHERE l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE'))::int AS "liveLeases"
    FROM "Resource" r
    WHERE r."blueprintId" = ANY(${[...byId.keys()]}::int[]) AND r.type = ${lease.resourceType} AND r.status = 'ACTIVE'
    ORDER BY r.id`;
  const queries = allocationQueries(ctx.tx);
  const result: Candidate[] = [];
  for (const resource of resources) {
    const { liveLeases, ...row } = resource;
    const loaded = byId.get(row.blueprintId);
    if (!loaded) continue;
    if (!(await loaded.implementation.canAcquireLeaseOn(loaded.blueprint, row, lease, queries))) continue;
    result.push({ resource: row, loaded, liveLeases });
  }
  return result.sort((a, b) => a.liveLeases - b.liveLeases || a.resource.id - b.resource.id);
}

type Allocation =
  | { kind: 'allocated'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'no-capacity' }
  | { kind: 'temporary-failure' }
  | { kind: 'failed'; lease: Lease };

async function allocateResource(ctx: TxContext, lease: Lease, candidate: LoadedBlueprint): Promise<Allocation> {
  const { blueprint, implementation } = candidate;
  const limitKeys: string[] = [];
  if (blueprint.resourceLimit !== null) {
    const units = Array.from({ length: blueprint.resourceLimit }, (_, n) => limitSlotKey(blueprint.id, n));
    const held = await heldKeys(ctx.tx, units);
    const free = units.filter((key) => !held.has(key));
    // Leases racing for the last units each start at a different one (by lease id), so that a
    // burst of allocations does not all collide on the first free unit.
    const unit = free[lease.id % Math.max(free.length, 1)];
    if (!unit) return { kind: 'no-capacity' };
    limitKeys.push(unit);
  }
  let plan;
  try {
    plan = await implementation.allocateResource(blueprint, lease, allocationQueries(ctx.tx));
  } catch (error) {
    const failed = await hookFailed(ctx, lease, blueprint.id, error);
    return failed ? { kind: 'failed', lease: failed } : { kind: 'temporary-failure' };
  }
  if (typeof plan.name !== 'string' || typeof plan.attributes !== 'object' || !Array.isArray(plan.slotLocks)) {
    throw new Error(`blueprint ${blueprint.id} (${implementation.key}) returned a malformed resource plan`);
  }
  // The row comes first so that the locks can name it; losing the lock race deletes it again,
  // before anything else (a log, a lease) refers to it.
  const resource = await ctx.tx.resource.create({
    data: {
      blueprintId: blueprint.id,
      type: blueprint.resourceType,
      name: plan.name,
      attributes: plan.attributes as object,
      allocatedForLeaseId: lease.id,
      status: 'PENDING',
      createdAt: ctx.now,
      lastUsedAt: ctx.now,
    },
  });
  const locks = await acquireSlotLocks(ctx.tx, { resourceId: resource.id }, [...plan.slotLocks, ...limitKeys]);
  if (!locks.ok) {
    await ctx.tx.resource.delete({ where: { id: resource.id } });
    return { kind: 'conflict', holders: locks.holders };
  }
  await logResource(ctx, resource, {
    type: 'resource-allocated',
    data: { leaseId: lease.id, status: 'PENDING' },
    leaseId: lease.id,
  });
  if (plan.activation === 'now') {
    // No wake-up here: the allocating lease takes it next, and if it can be shared, that
    // acquisition wakes the waiters (see acquired()).
    const active = await transitionResource(ctx, resource, 'ACTIVE', { type: 'resource-activated', data: {} });
    scheduleHealthCheck(ctx, active, candidate);
    return { kind: 'allocated', resource: active };
  }
  scheduleResourceUpdate(ctx, resource.id);
  return { kind: 'allocated', resource };
}

/**
 * A blueprint hook threw. Permanent: the lease breaks (returned). Temporary: logged, and the caller
 * moves on to the next option (null). Anything else is not the blueprint's verdict but a bug or a
 * database failure: it propagates, the transaction rolls back and the job is retried.
 */
async function hookFailed(ctx: TxContext, lease: Lease, blueprintId: number, error: unknown): Promise<Lease | null> {
  if (error instanceof PermanentFailure) return breakLease(ctx, lease, 'allocation-failed', error.message);
  if (error instanceof TemporaryFailure) {
    await logLease(ctx, lease, {
      type: 'allocation-failed-temporarily',
      data: { blueprintId, message: error.message },
      blueprintId,
    });
    return null;
  }
  throw error;
}

/**
 * An ACTIVE resource of a candidate blueprint that this lease cannot use, with no lease on it,
 * idle (no acquisition or release) and with nothing destroyed on it for the grace period, and not
 * already asked to go. Reclaiming it frees capacity (a binding, a limit slot) for this lease.
 */
async function reclaimableResource(
  ctx: TxContext,
  candidates: LoadedBlueprint[],
  usable: Candidate[],
): Promise<Resource | null> {
  const since = new Date(ctx.now.getTime() - ctx.deps.options.reclaimGraceMs);
  const exclude = usable.map((c) => c.resource.id);
  const rows = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT r.id FROM "Resource" r
    WHERE r."blueprintId" = ANY(${candidates.map((c) => c.blueprint.id)}::int[])
      AND r.status = 'ACTIVE' AND NOT (r.id = ANY(${exclude}::int[]))
      AND COALESCE(r."activatedAt", r."createdAt") < ${since}::timestamp
      AND NOT EXISTS (SELECT 1 FROM "Lease" l WHERE l."resourceId" = r.id
                      AND (l.status IN ('ACQUIRED', 'ACTIVE') OR l."acquiredAt" >= ${since}::timestamp OR l."destroyedAt" >= ${since}::timestamp))
      AND NOT EXISTS (SELECT 1 FROM "Command" c WHERE c."targetResourceId" = r.id AND NOT c.consumed)
    ORDER BY r.id LIMIT 1`;
  const id = rows[0]?.id;
  return id === undefined ? null : ctx.tx.resource.findUnique({ where: { id } });
}
