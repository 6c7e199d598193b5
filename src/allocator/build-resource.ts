import type { Blueprint, Lease, Resource } from '../generated/prisma/client.js';
import type { AllocationQueries, ResourcePlan } from '../blueprints/implementation.js';
import { limitSlotKey } from '../blueprints/implementation.js';
import { scheduleResourceUpdate } from './jobs.js';
import type { LoadedBlueprint } from './blueprints.js';
import type { Tx, TxContext } from './context.js';
import { scheduleHealthCheck } from './health.js';
import { publishLog, type SlotLockHolder } from './logs.js';
import { heldKeys, slotLockHolders } from './slot-locks.js';

// Building one resource of a blueprint: a unit of its limit, the implementation's plan, the row
// with its slot locks and logs in one statement. Leases (allocate.ts) and warm pools
// (warm-pool.ts) build the same way, so that the blueprint's limit holds for both.

/** The advisory lock namespace of per-blueprint allocation turns ("DRAL"). */
const ALLOCATION_LOCKS = 0x4452414c;

/**
 * The blueprint's build turn, held until commit: builds on one blueprint take turns (see the
 * allocation loop), and a change of the blueprint takes one too, so that the builds in flight
 * commit before the change looks at the blueprint's resources (to drain what it takes out of
 * service). Its own statement: one that went on to read rows would read them as they were before
 * the wait.
 */
export async function takeBuildTurn(ctx: TxContext, blueprintId: number): Promise<void> {
  await ctx.tx.$queryRaw`SELECT 1 AS turn FROM pg_advisory_xact_lock(${ALLOCATION_LOCKS}::int, ${blueprintId}::int)`;
}

/**
 * The blueprint's build turn if no one holds it now (true), held until commit; false, and nothing
 * taken, if someone does. For a pass that may already hold rows of the blueprint's resources (its
 * grants): the holders of the turn that lock such rows next (a reclaim, an edit of the blueprint)
 * would wait for the pass while it waited for them.
 */
export async function tryBuildTurn(ctx: TxContext, blueprintId: number): Promise<boolean> {
  const [row] = await ctx.tx.$queryRaw<{ taken: boolean }[]>`
    SELECT pg_try_advisory_xact_lock(${ALLOCATION_LOCKS}::int, ${blueprintId}::int) AS taken`;
  return row?.taken === true;
}

export type Built =
  | { kind: 'allocated'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'no-capacity' }
  /** The blueprint changed since `candidate` was read: nothing was built on the old config. */
  | { kind: 'blueprint-changed' }
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
    const unit = await freeLimitUnit(ctx.tx, blueprint.id, blueprint.resourceLimit, lease, queries);
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
  const created = await createResource(ctx, candidate, forLeaseId, plan, [...plan.slotLocks, ...limitKeys]);
  if (created.kind !== 'created') return created;
  const { resource } = created;
  if (plan.activation === 'now') scheduleHealthCheck(ctx, resource, candidate);
  else scheduleResourceUpdate(ctx, resource.id);
  return { kind: 'allocated', resource };
}

/**
 * Whether the blueprint's resource limit leaves a unit for one more resource (no limit: it does):
 * the look a build takes before it asks the implementation for a plan, for the dry run to say what
 * a build would find.
 */
export async function limitLeavesRoom(
  tx: Tx,
  blueprint: Pick<Blueprint, 'id' | 'resourceLimit'>,
  lease: Lease,
  queries: AllocationQueries,
): Promise<boolean> {
  return (
    blueprint.resourceLimit === null ||
    (await freeLimitUnit(tx, blueprint.id, blueprint.resourceLimit, lease, queries)) !== undefined
  );
}

/** Units of a resource limit looked at before all of them are. */
const UNIT_WINDOW = 64;

/**
 * A free unit of the blueprint's resource limit, or null when every unit is held. The units from
 * the blueprint's count of live resources on are looked at first, a window of them: builds take
 * units there, so a limit fills from its lowest units up and the free ones lie past the count.
 * Only when none of the window is free are all units looked at, so that filling a limit of
 * thousands reads a window per build rather than every unit (and a full limit reads them all, as
 * it must to say it is full). Leases racing for units each take a different one of those found
 * free (by lease id), so that a burst of allocations does not all collide on the first.
 */
async function freeLimitUnit(
  tx: Tx,
  blueprintId: number,
  limit: number,
  lease: Lease,
  queries: AllocationQueries,
): Promise<string | undefined> {
  const aFreeUnit = async (units: number[]) => {
    const keys = units.map((n) => limitSlotKey(blueprintId, n));
    const held = await heldKeys(tx, keys);
    const free = keys.filter((key) => !held.has(key));
    return free[lease.id % Math.max(free.length, 1)];
  };
  const all = (from: number, count: number) => Array.from({ length: count }, (_, n) => from + n);
  if (limit > UNIT_WINDOW) {
    const from = Math.min(await queries.liveResourceCount(blueprintId), limit - UNIT_WINDOW);
    const unit = await aFreeUnit(all(from, UNIT_WINDOW));
    if (unit) return unit;
  }
  return aFreeUnit(all(0, limit));
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
  { blueprint, version }: LoadedBlueprint,
  forLeaseId: number | null,
  plan: ResourcePlan,
  keys: readonly string[],
): Promise<
  | { kind: 'created'; resource: Resource }
  | { kind: 'conflict'; holders: SlotLockHolder[] }
  | { kind: 'blueprint-changed' }
> {
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
      SELECT b.id, ${blueprint.resourceType}, ${plan.name}, ${JSON.stringify(plan.attributes)}::jsonb,
             ${forLeaseId}::int, ${open ? 'ACTIVE' : 'PENDING'}::"ResourceStatus", ${open ? ctx.now : null}::timestamp,
             ${ctx.now}::timestamp, ${ctx.now}::timestamp, ${ctx.now}::timestamp
      FROM "Blueprint" b WHERE b.id = ${blueprint.id} AND (${version}::text IS NULL OR b.xmin::text = ${version}::text)
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
  // The blueprint's row is not the version the plan was made from: a change committed since.
  if (!row) return { kind: 'blueprint-changed' };
  const { __locked: mine, __logs: logs, ...resource } = row;
  if (mine.length === wanted.length) {
    const entry = { resourceId: resource.id, blueprintId: resource.blueprintId };
    publishLog(ctx.after, forLeaseId === null ? entry : { ...entry, leaseId: forLeaseId }, BigInt(logs[0]!), {
      resource: 'PENDING',
    });
    if (open) publishLog(ctx.after, entry, BigInt(logs[1]!), { resource: 'ACTIVE' });
    return { kind: 'created', resource };
  }
  if (mine.length > 0) await ctx.tx.$executeRaw`DELETE FROM "SlotLock" WHERE key = ANY(${mine}::text[])`;
  await ctx.tx.$executeRaw`DELETE FROM "Resource" WHERE id = ${resource.id}`;
  return {
    kind: 'conflict',
    holders: await slotLockHolders(
      ctx.tx,
      wanted.filter((key) => !mine.includes(key)),
    ),
  };
}
