import { Prisma, type Lease, type Resource } from '../generated/prisma/client.js';
import type { AllocationQueries } from '../blueprints/implementation.js';
import { acquireOn } from './acquire.js';
import {
  allocationView,
  allResources,
  ViewedResources,
  type AllocationView,
  type PassMemo,
} from './allocation-view.js';
import { candidatesFrom, findResource, type LoadedBlueprint } from './blueprints.js';
import { buildResource, takeBuildTurn, tryBuildTurn } from './build-resource.js';
import { sendCommand } from './commands.js';
import type { TxContext } from './context.js';
import { PermanentFailure, TemporaryFailure } from '../failures.js';
import type { SlotLockHolder } from './logs.js';
import { allocationQueries } from './queries.js';
import { heldSlotLocks } from './slot-locks.js';
import { drainingReason } from './drain.js';
import { breakLease, giveUpAfterBrokenBuilds } from './lease-end.js';
import { logLease } from './transitions.js';
import { sameWait, waitAndRetry, type Blocker } from './waiting.js';
import { warmPoolKeeps } from './warm-pool.js';

/** Allocations tried in one update on a blueprint whose slot locks keep being taken first. */
const ALLOCATION_ATTEMPTS = 3;

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
export async function allocateLease(ctx: TxContext, lease: Lease, prefetched?: AllocationView): Promise<Lease> {
  const { tx, deps } = ctx;
  const view = prefetched ?? (await allocationView(ctx, lease));
  // 1. Candidate blueprints.
  const blueprints = await candidatesFrom(tx, deps.registry, lease, view.blueprints);
  if (!blueprints.ok)
    return breakLease(ctx, lease, blueprints.reason, blueprints.message, null, blueprints.blueprintIds);
  const { candidates } = blueprints;

  // 2–3. Candidate resources, split into free and used.
  const memo = view.memo;
  let viewed = new ViewedResources(view.resources ?? { complete: true, rows: [] }, memo);
  let queries = viewed.queries(tx, ctx.grants, ctx);
  let resources = await candidateResources(lease, candidates, viewed, queries);
  const split = () => {
    const free = resources.filter(
      (c) =>
        c.liveLeases === 0 ||
        !c.loaded.implementation.shouldAllocateSupplementalResource(c.loaded.blueprint, c.resource, lease),
    );
    return { free, used: resources.filter((c) => !free.includes(c)) };
  };
  let { free, used } = split();
  /**
   * A large pool's view holds its least-loaded resources only: when none of them would do, every
   * resource is read after all, and the steps go on with the whole pool as before.
   */
  const widen = async (): Promise<boolean> => {
    if (viewed.complete) return false;
    await ctx.grants?.flush(ctx);
    viewed = new ViewedResources(await allResources(ctx, lease), memo);
    queries = viewed.queries(tx, ctx.grants, ctx);
    resources = await candidateResources(lease, candidates, viewed, queries);
    ({ free, used } = split());
    return true;
  };
  const lockFailures: SlotLockHolder[] = [];
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
      if (outcome.ok) return outcome.lease;
      if (outcome.reason === 'slot-lock') lockFailures.push(...outcome.holders);
    }
    return null;
  };
  const onFree =
    (await tryAll(free)) ??
    ((free.length === 0 && viewed.holdsEveryIdle()) || !(await widen()) ? null : await tryAll(free));
  if (onFree) return onFree;

  const gaveUp = await giveUpAfterBrokenBuilds(ctx, lease, view.broken ?? undefined);
  if (gaveUp) return gaveUp;

  // 4. A lease builds at most one resource at a time.
  if (view.building !== null)
    return waitAndRetry(ctx, lease, { reason: 'waiting-for-resource-activation', resourceId: view.building });

  // 5. Allocate a new resource where a blueprint can allocate now.
  const allocated = await allocateNew(ctx, lease, candidates, memo, queries, lockFailures);
  if (allocated.lease) return allocated.lease;
  // A wait that no wake-up is certain to end: retried on the exponential backoff, not patiently.
  let retrySoon = allocated.retrySoon;

  // 6. Share a resource that is already in use.
  const onUsed = (await tryAll(used)) ?? ((await widen()) ? ((await tryAll(free)) ?? (await tryAll(used))) : null);
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
  const { reclaimable, reclaimableAt, busy } = await reclaimLook(ctx, candidates, resources, memo);
  if (busy) retrySoon = true;
  // The view was read before this statement: a resource that opened or came free since then is
  // idle here but was not among the lease's candidates. Destroying what the lease could use would
  // only build it again; the lease looks again soon, and then sees it.
  if (reclaimable && (await usableBy(lease, reclaimable, candidates, queries))) retrySoon = true;
  else if (reclaimable) {
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
  // Capacity that is only draining says so: the owner sees why, the operator what to undrain.
  const blueprintIds = new Set(candidates.map((c) => c.blueprint.id));
  const draining = viewed
    .active()
    .filter((r) => drainingReason(r.resource) !== null && blueprintIds.has(r.resource.blueprintId))
    .map((r) => r.resource.id);
  const blocker = lockBlocker ?? (draining.length > 0 ? { reason: 'draining', resourceIds: draining } : null);
  // An idle resource still in its reclaim grace frees capacity when the grace runs out.
  const until = retrySoon || reclaimable ? null : reclaimableAt;
  return waitAndRetry(ctx, lease, blocker ?? { reason: 'no-capacity' }, { patient: !retrySoon, until });
}

/**
 * Step 5: a new resource on the first candidate blueprint that can build one now, and the lease
 * acquired on it, or waiting for it to open (the lease as it is after). Without a lease:
 * `retrySoon` when a blueprint was stopped by something no wake-up is certain to end (a hook or a
 * build that failed for now, a lost slot lock race tried too often, a config changed under the
 * pass). The holders of slot locks a build lost to are added to `lockFailures`.
 */
async function allocateNew(
  ctx: TxContext,
  lease: Lease,
  candidates: LoadedBlueprint[],
  memo: PassMemo | undefined,
  queries: AllocationQueries,
  lockFailures: SlotLockHolder[],
): Promise<{ lease: Lease; retrySoon?: undefined } | { lease?: undefined; retrySoon: boolean }> {
  let retrySoon = false;
  for (const candidate of candidates) {
    const { blueprint, implementation } = candidate;
    // Another lease of this demand found no capacity on it in this pass: neither would this one.
    if (memo?.noBuild.has(blueprint.id)) continue;
    // A lost slot lock race is tried again at once, a few times: the insert that lost waited for
    // the winner's commit, so the blueprint now sees what the winner took and picks something
    // else (the next binding, the next limit unit) instead of the lease backing off for it.
    // A pass keeps its turn on a blueprint until it commits: its later leases need not ask again.
    let serialized = memo?.turns.has(blueprint.id) ?? false;
    for (let attempt = 1; ; attempt++) {
      let canNow: boolean;
      try {
        canNow = await implementation.canAllocateNow(blueprint, lease, queries);
        if (canNow && !serialized) {
          // Allocations on one blueprint take turns (until commit): leases allocating at the
          // same moment would otherwise all pick the same binding or unit, all but one losing
          // the slot lock race and backing off. After the wait, the blueprint looks again.
          serialized = true;
          await takeBuildTurn(ctx, blueprint.id);
          // What the pass looked up before its turn may miss what a racer committed meanwhile.
          memo?.forgetLookups();
          memo?.turns.add(blueprint.id);
          canNow = await implementation.canAllocateNow(blueprint, lease, queries);
        }
      } catch (error) {
        const failed = await hookFailed(ctx, lease, blueprint.id, error);
        if (failed) return { lease: failed };
        retrySoon = true;
        break;
      }
      if (!canNow) {
        if (attempt === 1) memo?.noBuild.add(blueprint.id);
        break;
      }
      const allocation = await allocateResource(ctx, lease, candidate, memo ? queries : allocationQueries(ctx.tx));
      if (allocation.kind === 'failed') return { lease: allocation.lease };
      if (allocation.kind === 'temporary-failure') {
        retrySoon = true;
        break;
      }
      if (allocation.kind === 'no-capacity') {
        memo?.noBuild.add(blueprint.id);
        break;
      }
      if (allocation.kind === 'blueprint-changed') {
        // The config this pass read is gone; the change asked for a pass, which reads the new one.
        memo?.noBuild.add(blueprint.id);
        retrySoon = true;
        break;
      }
      if (allocation.kind === 'conflict') {
        memo?.forgetLookups();
        lockFailures.push(...allocation.holders);
        if (attempt < ALLOCATION_ATTEMPTS) continue;
        retrySoon = true;
        break;
      }
      memo?.add(allocation.resource);
      const acceptsNow = await implementation.canAcquireLeaseOn(blueprint, allocation.resource, lease, queries);
      const outcome = acceptsNow ? await acquireOn(ctx, lease, allocation.resource, candidate) : null;
      if (outcome?.ok) return { lease: outcome.lease };
      // A blueprint may refuse leases on its PENDING resources (the mystery box): wait for it to open.
      return {
        lease: await waitAndRetry(ctx, lease, {
          reason: 'waiting-for-resource-activation',
          resourceId: allocation.resource.id,
        }),
      };
    }
  }
  return { retrySoon };
}

/**
 * Policy: least-loaded first (fewest leases on it), then oldest, so that load spreads over a pool
 * and the same lease asked twice sees the same order.
 */
async function candidateResources(
  lease: Lease,
  candidates: LoadedBlueprint[],
  viewed: ViewedResources,
  queries: AllocationQueries,
): Promise<Candidate[]> {
  const byId = new Map(candidates.map((c) => [c.blueprint.id, c]));
  const result: Candidate[] = [];
  for (const { resource, live } of viewed.active()) {
    // A draining resource takes no new lease (the grant re-checks this under the row's share lock).
    if (drainingReason(resource) !== null) continue;
    const loaded = byId.get(resource.blueprintId);
    if (!loaded) continue;
    if (!(await loaded.implementation.canAcquireLeaseOn(loaded.blueprint, resource, lease, queries))) continue;
    result.push({ resource, loaded, liveLeases: live });
  }
  return result.sort((a, b) => a.liveLeases - b.liveLeases || a.resource.id - b.resource.id);
}

type Allocation =
  | { kind: 'allocated'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'no-capacity' }
  | { kind: 'blueprint-changed' }
  | { kind: 'temporary-failure' }
  | { kind: 'failed'; lease: Lease };

async function allocateResource(
  ctx: TxContext,
  lease: Lease,
  candidate: LoadedBlueprint,
  queries: AllocationQueries,
): Promise<Allocation> {
  const built = await buildResource(ctx, candidate, lease, lease.id, queries);
  if (built.kind !== 'hook-failed') return built;
  const failed = await hookFailed(ctx, lease, candidate.blueprint.id, built.error);
  return failed ? { kind: 'failed', lease: failed } : { kind: 'temporary-failure' };
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

/** Whether the lease could take the resource as it is now (its blueprint judging). */
async function usableBy(
  lease: Lease,
  resource: Resource,
  candidates: LoadedBlueprint[],
  queries: AllocationQueries,
): Promise<boolean> {
  const loaded = candidates.find((c) => c.blueprint.id === resource.blueprintId);
  return loaded !== undefined && loaded.implementation.canAcquireLeaseOn(loaded.blueprint, resource, lease, queries);
}

/**
 * An ACTIVE resource of a candidate blueprint that this lease cannot use, with no lease on it, not
 * draining, not already asked to go, and idle (no acquisition or release, nothing destroyed on it)
 * for the grace period: reclaiming it frees capacity (a binding, a limit slot) for this lease. The
 * oldest such resource is the one asked to go. Idle is "leaseCount" = 0 (the live leases on the
 * resource, kept by the database): an index range of the idle ones, where asking each ACTIVE
 * resource for its live leases read the whole pool, on every pass that found a full pool unable
 * to serve a lease.
 *
 * A blueprint's warm pool keeps what the operator's reclaim leaves it (`warmPoolKeeps`, under the
 * blueprint's build turn): the pool's fill would build at once what a reclaim took from its
 * `minReady`, and then the next waiting lease would reclaim again. `busy`: another held the turn of
 * such a blueprint, which was passed over for now.
 *
 * When there is none, it says when the first such resource still inside its grace will be
 * reclaimable (`reclaimableAt`, null: none is idle): nothing else asks for a pass at that moment,
 * so the lease's wait records it.
 */
async function reclaimLook(
  ctx: TxContext,
  candidates: LoadedBlueprint[],
  usable: Candidate[],
  memo: PassMemo | undefined,
): Promise<{ reclaimable: Resource | null; reclaimableAt: Date | null; busy: boolean }> {
  const since = new Date(ctx.now.getTime() - ctx.deps.options.reclaimGraceMs);
  const exclude = usable.map((c) => c.resource.id);
  const plain = candidates.filter((c) => c.blueprint.minReady <= 0).map((c) => c.blueprint.id);
  let pick: number | null = null;
  let idleSince: number | null = null;
  let busy = false;
  const sooner = (ms: number | null) => {
    if (ms !== null && (idleSince === null || ms < idleSince)) idleSince = ms;
  };
  if (plain.length > 0) {
    const [row] = await ctx.tx.$queryRaw<{ id: number | null; idleSinceMs: number | null }[]>`
      WITH idle AS (${idleSql(plain, exclude)}),
      pick AS (
        SELECT r.id FROM idle r
        WHERE COALESCE(r."activatedAt", r."createdAt") < ${since}::timestamp
          AND NOT EXISTS (SELECT 1 FROM "Lease" l WHERE l."resourceId" = r.id
                          AND (l."acquiredAt" >= ${since}::timestamp OR l."destroyedAt" >= ${since}::timestamp))
        ORDER BY r.id LIMIT 1)
      SELECT (SELECT id FROM pick) AS id,
        (SELECT (EXTRACT(EPOCH FROM min(${idleSinceSql})) * 1000)::float8
         FROM idle r WHERE NOT EXISTS (SELECT 1 FROM pick)) AS "idleSinceMs"`;
    pick = row?.id ?? null;
    sooner(row?.idleSinceMs == null ? null : Number(row.idleSinceMs));
  }
  for (const loaded of candidates.filter((c) => c.blueprint.minReady > 0)) {
    const blueprintId = loaded.blueprint.id;
    const idleOf = () =>
      ctx.tx.$queryRaw<{ id: number; past: boolean; idleSinceMs: number }[]>`
        SELECT r.id, ${idleSinceSql} < ${since}::timestamp AS past,
          (EXTRACT(EPOCH FROM ${idleSinceSql}) * 1000)::float8 AS "idleSinceMs"
        FROM (${idleSql([blueprintId], exclude)}) r ORDER BY r.id`;
    let idle = await idleOf();
    if (idle.length === 0) continue;
    if (!memo?.turns.has(blueprintId)) {
      // What the pool counts as ready, and what another reclaim asks to go, may not change while
      // this one counts: the blueprint's build turn, kept until commit as a build's is. Not waited
      // for (see tryBuildTurn): a fill, a reclaim or an edit holding it now, the lease looks again
      // soon.
      if (!(await tryBuildTurn(ctx, blueprintId))) {
        busy = true;
        continue;
      }
      memo?.forgetLookups();
      memo?.turns.add(blueprintId);
      idle = await idleOf();
    }
    const keeps = await warmPoolKeeps(ctx, loaded);
    const past = idle.filter((r) => r.past).map((r) => r.id);
    const kept = keeps(past);
    const first = past.find((id) => !kept.has(id));
    if (first !== undefined) {
      if (pick === null || first < pick) pick = first;
      continue;
    }
    // Those still in their grace that the pool would not keep once it has run out.
    const keptLater = keeps(idle.map((r) => r.id));
    for (const r of idle) if (!r.past && !keptLater.has(r.id)) sooner(Number(r.idleSinceMs));
  }
  return {
    busy,
    reclaimable: pick === null ? null : await findResource(ctx.tx, pick),
    // Reclaimable once idle for longer than the grace: a millisecond after it ends.
    reclaimableAt:
      pick !== null || idleSince === null ? null : new Date(Math.ceil(idleSince) + ctx.deps.options.reclaimGraceMs + 1),
  };
}

/**
 * The idle resources of `blueprintIds` a reclaim for a lease could ask to go, but for `exclude`
 * (those the lease could use): ACTIVE, no live lease, not draining, not already asked to go.
 */
function idleSql(blueprintIds: number[], exclude: number[]): Prisma.Sql {
  return Prisma.sql`
    SELECT r.id, r."activatedAt", r."createdAt" FROM "Resource" r
    WHERE r."blueprintId" = ANY(${blueprintIds}::int[])
      AND r.status = 'ACTIVE' AND r."leaseCount" = 0 AND r."drainingAt" IS NULL AND NOT (r.id = ANY(${exclude}::int[]))
      AND NOT EXISTS (SELECT 1 FROM "Lease" l WHERE l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE'))
      AND NOT EXISTS (SELECT 1 FROM "Command" c WHERE c."targetResourceId" = r.id AND NOT c.consumed)`;
}

/** Since when the idle resource `r` has been idle: opened, or its last lease acquired or ended. */
const idleSinceSql = Prisma.sql`GREATEST(COALESCE(r."activatedAt", r."createdAt"),
  (SELECT max(GREATEST(l."acquiredAt", l."destroyedAt")) FROM "Lease" l WHERE l."resourceId" = r.id))`;
