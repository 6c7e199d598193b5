import { Prisma, type Lease, type Resource, type ResourceStatus } from '../generated/prisma/client.js';
import type { AllocationQueries, ResourcePlan } from '../blueprints/implementation.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import { limitSlotKey } from '../blueprints/implementation.js';
import { scheduleResourceUpdate } from './jobs.js';
import { acquireOn } from './acquire.js';
import {
  candidateBlueprintsSql,
  candidatesFrom,
  decodeResource,
  findResource,
  type CandidateBlueprintRows,
  type LoadedBlueprint,
} from './blueprints.js';
import { sendCommand } from './commands.js';
import type { GrantBatch, TxContext } from './context.js';
import { PermanentFailure, TemporaryFailure } from '../failures.js';
import { scheduleHealthCheck } from './health.js';
import { publishLog, type SlotLockHolder } from './logs.js';
import { allocationQueries } from './queries.js';
import { heldKeys, heldSlotLocks, slotLockHolders } from './slot-locks.js';
import { breakLease, brokenBuildsColumns, giveUpAfterBrokenBuilds } from './lease-end.js';
import { logLease } from './transitions.js';
import { leaseValues, type LeaseSql } from './lease-sql.js';
import { sameWait, waitAndRetry, type Blocker } from './waiting.js';

/** Allocations tried in one update on a blueprint whose slot locks keep being taken first. */
const ALLOCATION_ATTEMPTS = 3;
/**
 * Pools up to this size come whole in the allocation view; a larger one comes as its least-loaded
 * ACTIVE resources only, so that a grant on a pool of 10,000 hosts reads a few rows, not 10,000.
 */
export const VIEW_RESOURCES = 32;
/** The advisory lock namespace of per-blueprint allocation turns ("DRAL"). */
export const ALLOCATION_LOCKS = 0x4452414c;

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
          await ctx.tx
            .$queryRaw`SELECT 1 AS turn FROM pg_advisory_xact_lock(${ALLOCATION_LOCKS}::int, ${blueprint.id}::int)`;
          // What the pass looked up before its turn may miss what a racer committed meanwhile.
          memo?.forgetLookups();
          memo?.turns.add(blueprint.id);
          canNow = await implementation.canAllocateNow(blueprint, lease, queries);
        }
      } catch (error) {
        const failed = await hookFailed(ctx, lease, blueprint.id, error);
        if (failed) return failed;
        retrySoon = true;
        break;
      }
      if (!canNow) {
        if (attempt === 1) memo?.noBuild.add(blueprint.id);
        break;
      }
      const allocation = await allocateResource(ctx, lease, candidate, memo ? queries : allocationQueries(ctx.tx));
      if (allocation.kind === 'failed') return allocation.lease;
      if (allocation.kind === 'temporary-failure') {
        retrySoon = true;
        break;
      }
      if (allocation.kind === 'no-capacity') {
        memo?.noBuild.add(blueprint.id);
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
      if (outcome?.ok) return outcome.lease;
      // A blueprint may refuse leases on its PENDING resources (the mystery box): wait for it to open.
      return waitAndRetry(ctx, lease, {
        reason: 'waiting-for-resource-activation',
        resourceId: allocation.resource.id,
      });
    }
  }

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
  const reclaimable = await reclaimableResource(ctx, candidates, resources);
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
    .filter((r) => r.resource.drainingAt !== null && blueprintIds.has(r.resource.blueprintId))
    .map((r) => r.resource.id);
  const blocker = lockBlocker ?? (draining.length > 0 ? { reason: 'draining', resourceIds: draining } : null);
  return waitAndRetry(ctx, lease, blocker ?? { reason: 'no-capacity' }, { patient: !retrySoon });
}

export interface AllocationView {
  blueprints: CandidateBlueprintRows;
  /**
   * The resources (not DESTROYED) of the enabled blueprints that yield the type with their live
   * lease counts, least loaded first. `complete`: all of them; otherwise (a pool
   * larger than VIEW_RESOURCES) only the VIEW_RESOURCES least-loaded ACTIVE ones.
   */
  resources: ViewResources | null;
  /** The lease's broken builds (see giveUpAfterBrokenBuilds). */
  broken: { count: number; last: number | null; hopeless: boolean } | null;
  /** A resource the lease is building (step 4); null when none. */
  building: number | null;
  /** Set by a pass that keeps the view for the leases of one demand (see PoolViews). */
  memo?: PassMemo;
}

/**
 * What a pass learned of the pool since it read a view, so that the leases of one demand after
 * the first do not each ask the database (and the blueprint, over the whole pool) again: which
 * blueprints could not build for the demand, the blueprints' attribute lookups with the resources
 * the pass built added, and those resources themselves. Dropped with the view (a savepoint rolled
 * back, a change the view does not follow).
 */
export class PassMemo {
  readonly noBuild = new Set<number>();
  /** Blueprints whose allocation turn the pass holds (see the allocation loop). */
  readonly turns = new Set<number>();
  readonly built: { resource: Resource; live: number }[] = [];
  private readonly values: { blueprintId: number; statuses: readonly string[]; attribute: string; values: string[] }[] =
    [];

  async attributeValues(
    blueprintId: number,
    statuses: readonly ResourceStatus[],
    attribute: string,
    read: () => Promise<string[]>,
  ): Promise<string[]> {
    const key = [...statuses].sort().join();
    const kept = this.values.find(
      (v) => v.blueprintId === blueprintId && v.attribute === attribute && v.statuses.join() === key,
    );
    if (kept) return kept.values;
    const values = await read();
    this.values.push({ blueprintId, statuses: [...statuses].sort(), attribute, values });
    return values;
  }

  /** A resource this pass built: the lookups it answers would now include it. */
  add(resource: Resource): void {
    this.built.push({ resource, live: 0 });
    const attributes = resource.attributes as Record<string, unknown>;
    for (const v of this.values) {
      const value = attributes[v.attribute];
      if (v.blueprintId !== resource.blueprintId || !v.statuses.includes(resource.status) || value == null) continue;
      // As attributes->>'name' gives it.
      v.values.push(typeof value === 'string' ? value : JSON.stringify(value));
    }
  }

  /** A racing allocation took what a lookup called free: look in the database again. */
  forgetLookups(): void {
    this.values.length = 0;
  }
}

/**
 * What allocation reads, in one statement instead of one each, since every attempt of every lease
 * reads it: the candidate blueprints, an older waiting lease, and (only if there is none, since
 * the lease then just queues) the resources, the lease's broken builds and the resource it is
 * building. The resources are those of every enabled blueprint of the type; the ones the lease may
 * not use are filtered out by candidateResources. As columns, so that lease-update.ts can read
 * them with the lease's lock (`lease`: its columns there).
 */
export function allocationViewSql(registry: BlueprintRegistry, lease: LeaseSql): Prisma.Sql {
  return Prisma.sql`(
    SELECT json_build_object('blueprints', ${candidateBlueprintsSql(registry, lease)},
      'resources', ${resourcesSql(lease, VIEW_RESOURCES)},
      'broken', (
        SELECT row_to_json(b) FROM (SELECT ${brokenBuildsColumns} FROM "Resource" r
        WHERE "allocatedForLeaseId" = ${lease.id} AND "statusReason" = 'resource-broken') b),
      'building', (
        SELECT id FROM "Resource" WHERE "allocatedForLeaseId" = ${lease.id} AND status = 'PENDING' LIMIT 1)))`;
}

export type ViewResources = { complete: boolean; rows: { row: Record<string, unknown>; live: number }[] | null };

/**
 * The type's live resources with their live lease counts (see AllocationView.resources): whole,
 * or when there are more than `limit`, the `limit` least-loaded ACTIVE ones. The counts are
 * Resource."leaseCount" (kept by the database, see its migration), so that the least-loaded few
 * are an index range per blueprint and telling a large pool from a small one counts at most
 * `limit` + 1 rows: what a large pool's view costs does not grow with the pool.
 */
function resourcesSql(lease: LeaseSql, limit: number | null): Prisma.Sql {
  const live = Prisma.sql`r.status IN ('PENDING', 'ACTIVE', 'RELEASED', 'BROKEN')`;
  const complete =
    limit === null
      ? Prisma.sql`SELECT true AS complete`
      : Prisma.sql`SELECT count(*) <= ${limit}::int AS complete FROM (
          SELECT 1 FROM "Resource" r WHERE r."blueprintId" IN (SELECT id FROM b) AND r.type = ${lease.resourceType} AND ${live}
          LIMIT ${limit + 1}::int) x`;
  return Prisma.sql`(
    WITH b AS (SELECT b.id FROM "Blueprint" b WHERE b."resourceType" = ${lease.resourceType} AND NOT b.disabled),
    n AS (${complete}),
    -- Each picked row carries its own columns: joining the picks back to "Resource" by id was
    -- planned as a hash join over the whole table (the planner cannot know the picks are few).
    picked AS (
      SELECT to_jsonb(r) AS row, r.id, r."leaseCount" AS live FROM "Resource" r, n
      WHERE n.complete AND r."blueprintId" IN (SELECT id FROM b) AND r.type = ${lease.resourceType} AND ${live}
      UNION ALL
      (SELECT p.row, p.id, p.live FROM n, b CROSS JOIN LATERAL (
         SELECT to_jsonb(r) AS row, r.id, r."leaseCount" AS live FROM "Resource" r
         WHERE r."blueprintId" = b.id AND r.status = 'ACTIVE' AND r.type = ${lease.resourceType}
         ORDER BY r."leaseCount", r.id LIMIT ${limit ?? 0}::int) p
       WHERE NOT n.complete ORDER BY p.live, p.id LIMIT ${limit ?? 0}::int))
    SELECT json_build_object('complete', n.complete, 'rows',
      (SELECT json_agg(json_build_object('row', p.row, 'live', p.live) ORDER BY p.live, p.id) FROM picked p))
    FROM n)`;
}

/** Every live resource of the lease's type, for when the view's least-loaded few would not do. */
async function allResources(ctx: TxContext, lease: Lease): Promise<ViewResources> {
  const [row] = await ctx.tx.$queryRaw<{ resources: ViewResources }[]>`
    SELECT ${resourcesSql(leaseValues(lease), null)} AS resources`;
  return row?.resources ?? { complete: true, rows: [] };
}

export async function allocationView(ctx: TxContext, lease: Lease): Promise<AllocationView> {
  const [row] = await ctx.tx.$queryRaw<{ view: AllocationView }[]>`
    SELECT ${allocationViewSql(ctx.deps.registry, leaseValues(lease))} AS view`;
  return row?.view ?? { blueprints: null, resources: null, broken: null, building: null };
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
    if (resource.drainingAt !== null) continue;
    const loaded = byId.get(resource.blueprintId);
    if (!loaded) continue;
    if (!(await loaded.implementation.canAcquireLeaseOn(loaded.blueprint, resource, lease, queries))) continue;
    result.push({ resource, loaded, liveLeases: live });
  }
  return result.sort((a, b) => a.liveLeases - b.liveLeases || a.resource.id - b.resource.id);
}

/**
 * The view's resources, decoded once, and the blueprints' questions answered from them: a
 * blueprint's first look at its resources, and the live lease count of a listed resource, need no
 * statement of their own. Later looks read the database again, so that a blueprint that lost a
 * race (see the allocation loop) sees what the winner took.
 */
class ViewedResources {
  private readonly rows: { resource: Resource; live: number }[];
  private readonly live = new Map<number, number>();
  private readonly looked = new Set<number>();
  readonly complete: boolean;

  constructor(
    view: ViewResources,
    private readonly memo?: PassMemo,
  ) {
    this.complete = view.complete;
    this.rows = (view.rows ?? []).map(({ row, live }) => ({ resource: decodeResource(row), live: Number(live) }));
    // What the pass built since reading the view: in a whole pool's view, the pool is still whole.
    const listed = new Set(this.rows.map((r) => r.resource.id));
    this.rows.push(...(memo?.built ?? []).filter((b) => !listed.has(b.resource.id)));
    this.rows.sort((a, b) => a.live - b.live || a.resource.id - b.resource.id);
    for (const { resource, live } of this.rows) this.live.set(resource.id, live);
  }

  active() {
    return this.rows.filter((r) => r.resource.status === 'ACTIVE');
  }

  /**
   * Whether every ACTIVE resource without live leases is here: the view is complete, or it goes on
   * past them (least loaded first) to a resource in use.
   */
  holdsEveryIdle(): boolean {
    return this.complete || (this.rows.at(-1)?.live ?? 0) > 0;
  }

  /** `pending`: grants not yet written, flushed before a lease count is read from the database. */
  queries(tx: TxContext['tx'], pending?: GrantBatch, ctx?: TxContext): AllocationQueries {
    const db = allocationQueries(tx);
    const listed = new Set<string>(['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN']);
    return {
      ...db,
      resources: async (blueprintId, statuses) => {
        if (!this.complete || this.looked.has(blueprintId) || !statuses.every((status) => listed.has(status)))
          return db.resources(blueprintId, statuses);
        this.looked.add(blueprintId);
        return this.rows
          .map((r) => r.resource)
          .filter((r) => r.blueprintId === blueprintId && statuses.includes(r.status));
      },
      attributeValues: (blueprintId, statuses, attribute) =>
        this.memo
          ? this.memo.attributeValues(blueprintId, statuses, attribute, () =>
              db.attributeValues(blueprintId, statuses, attribute),
            )
          : db.attributeValues(blueprintId, statuses, attribute),
      liveLeaseCount: async (resourceId) => {
        const known = this.live.get(resourceId);
        if (known !== undefined) return known;
        if (pending && ctx) await pending.flush(ctx);
        return db.liveLeaseCount(resourceId);
      },
    };
  }
}

type Allocation =
  | { kind: 'allocated'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'no-capacity' }
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

export type Built =
  | { kind: 'allocated'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'no-capacity' }
  | { kind: 'hook-failed'; error: unknown };

/**
 * Builds one resource of the blueprint as `lease` asks: a unit of its limit, the implementation's
 * plan, the row and its slot locks, then open now or a scheduled setup. `forLeaseId`: the lease it
 * is built for, or null for a warm pool's resource (see warm-pool.ts), which `lease` only
 * describes. A throwing hook is the caller's to judge.
 */
export async function buildResource(
  ctx: TxContext,
  candidate: LoadedBlueprint,
  lease: Lease,
  forLeaseId: number | null,
  queries: AllocationQueries,
): Promise<Built> {
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
    plan = await implementation.allocateResource(blueprint, lease, queries);
  } catch (error) {
    return { kind: 'hook-failed', error };
  }
  if (typeof plan.name !== 'string' || typeof plan.attributes !== 'object' || !Array.isArray(plan.slotLocks)) {
    throw new Error(`blueprint ${blueprint.id} (${implementation.key}) returned a malformed resource plan`);
  }
  // The row comes first so that the locks can name it (in the same statement); losing the lock
  // race deletes it again, before anything else (a log, a lease) refers to it.
  const created = await createResource(ctx, blueprint, forLeaseId, plan, [...plan.slotLocks, ...limitKeys]);
  if (!created.ok) return { kind: 'conflict', holders: created.holders };
  const { resource } = created;
  if (plan.activation === 'now') scheduleHealthCheck(ctx, resource, candidate);
  else scheduleResourceUpdate(ctx, resource.id);
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
  // A blueprint's warm pool keeps its minReady idle resources: only ones past those are reclaimed.
  const rows = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT r.id FROM "Resource" r JOIN "Blueprint" b ON b.id = r."blueprintId"
    WHERE r."blueprintId" = ANY(${candidates.map((c) => c.blueprint.id)}::int[])
      AND (b."minReady" = 0 OR b."minReady" < (
        SELECT count(*) FROM "Resource" i
        WHERE i."blueprintId" = b.id AND i.status = 'ACTIVE' AND i."drainingAt" IS NULL
          AND NOT EXISTS (SELECT 1 FROM "Lease" il WHERE il."resourceId" = i.id AND il.status IN ('ACQUIRED', 'ACTIVE'))))
      AND r.status = 'ACTIVE' AND r."drainingAt" IS NULL AND NOT (r.id = ANY(${exclude}::int[]))
      AND COALESCE(r."activatedAt", r."createdAt") < ${since}::timestamp
      AND NOT EXISTS (SELECT 1 FROM "Lease" l WHERE l."resourceId" = r.id
                      AND (l.status IN ('ACQUIRED', 'ACTIVE') OR l."acquiredAt" >= ${since}::timestamp OR l."destroyedAt" >= ${since}::timestamp))
      AND NOT EXISTS (SELECT 1 FROM "Command" c WHERE c."targetResourceId" = r.id AND NOT c.consumed)
    ORDER BY r.id LIMIT 1`;
  const id = rows[0]?.id;
  return id === undefined ? null : findResource(ctx.tx, id);
}

/**
 * The resource row, its slot locks and its logs in one statement; the locks as acquireSlotLocks
 * takes them (one INSERT … ON CONFLICT DO NOTHING, all or none): if any was held, no log is
 * written, the locks this inserted and the row are deleted again and the holders reported. A
 * resource that opens now is written ACTIVE with both its logs, allocated then activated, as its
 * own PENDING → ACTIVE transition would have logged them.
 */
async function createResource(
  ctx: TxContext,
  blueprint: LoadedBlueprint['blueprint'],
  forLeaseId: number | null,
  plan: ResourcePlan,
  keys: readonly string[],
): Promise<{ ok: true; resource: Resource } | { ok: false; holders: SlotLockHolder[] }> {
  const wanted = [...new Set(keys)].sort();
  const open = plan.activation === 'now';
  const allocatedLog =
    forLeaseId === null
      ? { leaseId: null, warmPool: true, status: 'PENDING' }
      : { leaseId: forLeaseId, status: 'PENDING' };
  const [row] = await ctx.tx.$queryRaw<(Resource & { __locked: string[]; __logs: string[] })[]>`
    WITH r AS (
      INSERT INTO "Resource" ("blueprintId", type, name, attributes, "allocatedForLeaseId", status, "activatedAt",
                              "createdAt", "lastUsedAt", "updatedAt")
      VALUES (${blueprint.id}, ${blueprint.resourceType}, ${plan.name}, ${JSON.stringify(plan.attributes)}::jsonb,
              ${forLeaseId}::int, ${open ? 'ACTIVE' : 'PENDING'}::"ResourceStatus", ${open ? ctx.now : null}::timestamp,
              ${ctx.now}::timestamp, ${ctx.now}::timestamp, ${ctx.now}::timestamp)
      RETURNING *),
    s AS (
      INSERT INTO "SlotLock" (key, "ownerLeaseId", "ownerResourceId")
      SELECT k, NULL, r.id FROM r, unnest(${wanted}::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n
      ON CONFLICT (key) DO NOTHING
      RETURNING key),
    g AS (
      INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId", "blueprintId")
      SELECT e.type, e.data, ${ctx.now}::timestamp, e.lease, r.id, r."blueprintId"
      FROM r CROSS JOIN (VALUES
        (1, 'resource-allocated', ${JSON.stringify(allocatedLog)}::jsonb, ${forLeaseId}::int),
        (2, 'resource-activated', '{}'::jsonb, NULL::int)) AS e(n, type, data, lease)
      WHERE (e.n = 1 OR ${open}) AND (SELECT count(*) FROM s) = ${wanted.length}::int
      ORDER BY e.n
      RETURNING id)
    SELECT r.*, ARRAY(SELECT key FROM s) AS __locked, ARRAY(SELECT id::text FROM g ORDER BY id) AS __logs FROM r`;
  if (!row) throw new Error('the resource insert returned nothing');
  const { __locked: mine, __logs: logs, ...resource } = row;
  if (mine.length === wanted.length) {
    const entry = { resourceId: resource.id, blueprintId: resource.blueprintId };
    publishLog(ctx.after, forLeaseId === null ? entry : { ...entry, leaseId: forLeaseId }, BigInt(logs[0]!), {
      resource: 'PENDING',
    });
    if (open) publishLog(ctx.after, entry, BigInt(logs[1]!), { resource: 'ACTIVE' });
    return { ok: true, resource };
  }
  if (mine.length > 0) await ctx.tx.$executeRaw`DELETE FROM "SlotLock" WHERE key = ANY(${mine}::text[])`;
  await ctx.tx.$executeRaw`DELETE FROM "Resource" WHERE id = ${resource.id}`;
  return {
    ok: false,
    holders: await slotLockHolders(
      ctx.tx,
      wanted.filter((key) => !mine.includes(key)),
    ),
  };
}
