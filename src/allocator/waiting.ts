import { Prisma, type Lease } from '../generated/prisma/client.js';
import { schedulePass } from './jobs.js';
import { backoffDelayMs } from './backoff.js';
import type { TxContext } from './context.js';
import { publishLog } from './logs.js';

export interface Blocker {
  reason: string;
  [detail: string]: unknown;
}

/**
 * The lease cannot make progress now: record why, and look again later, in a later pass of its
 * type. A patient wait is one that an event is certain to end (capacity frees, a resource opens,
 * a blueprint changes: each asks for a pass): the pass comes back only after `idleRetryMs`, a
 * safety net. Any other wait (a lost race, a temporary failure) backs off exponentially with
 * jitter.
 *
 * The log is written when the wait changes (reason, keys), not on every retry, so that a long wait
 * does not flood the lease's log; `holders` changes alone are kept on the lease, not logged.
 */
export async function waitAndRetry(
  ctx: TxContext,
  lease: Lease,
  blocker: Blocker,
  options: { patient?: boolean; until?: Date | null } = {},
): Promise<Lease> {
  const attempts = lease.attempts + 1;
  const now = ctx.now.getTime();
  // A patient wait that time alone will also end (`until`: an idle resource's reclaim grace runs
  // out) is looked at again then, since no change will ask for a pass at that moment.
  const until = options.patient && options.until ? options.until.getTime() : null;
  const runAt = options.patient
    ? patientRetryAt(ctx, until)
    : new Date(now + backoffDelayMs(attempts, ctx.deps.options));
  schedulePass(ctx, lease.resourceType, runAt, { capacity: false });
  // A patient wait found by its type's pass records the pass's capacity epoch: passes of the same
  // epoch do not try it again (scheduler/capacity-epoch.ts), until its `until` has come.
  const epoch = options.patient ? epochFor(ctx, lease) : undefined;
  const recorded: Blocker = epoch === undefined ? blocker : { ...blocker, epoch, ...(until === null ? {} : { until }) };
  // A patient wait that has not changed, holders included, has nothing to write: its retry does
  // not back off, so its count of attempts is not used.
  if (options.patient && sameJson(lease.blocker, recorded)) return lease;
  const { reason, ...blockers } = blocker;
  // The log only when the wait changed, in the statement of the row: this runs on every retry of
  // every waiting lease.
  const log = sameWait(lease.blocker, blocker)
    ? Prisma.empty
    : Prisma.sql`, g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId")
        SELECT 'waiting-for-resources', ${JSON.stringify({ reason, blockers })}::jsonb, ${ctx.now}::timestamp, u.id
        FROM u RETURNING id)`;
  const [row] = await ctx.tx.$queryRaw<{ log: bigint | null }[]>`
    WITH u AS (
      UPDATE "Lease" SET attempts = ${attempts}, blocker = ${JSON.stringify(recorded)}::jsonb, "updatedAt" = ${ctx.now}::timestamp
      WHERE id = ${lease.id} RETURNING id) ${log}
    SELECT ${log === Prisma.empty ? Prisma.sql`NULL::bigint` : Prisma.sql`(SELECT id FROM g)`} AS log`;
  if (row?.log != null) publishLog(ctx.after, { leaseId: lease.id }, row.log, { lease: lease.status });
  return { ...lease, attempts, blocker: recorded as Prisma.JsonValue, updatedAt: ctx.now };
}

/**
 * When a pass looks again at a patient wait: at the idle retry, or when time alone ends the wait
 * (`until`, ms) if that comes first. A pass that passes such a wait over unchanged asks for the
 * same time again: run as its type's job, it has taken the time the wait asked for.
 */
export function patientRetryAt(ctx: TxContext, until: number | null): Date {
  const now = ctx.now.getTime();
  return new Date(now + Math.min(ctx.deps.options.idleRetryMs, Math.max(0, (until ?? Infinity) - now)));
}

/**
 * The capacity epoch a patient wait of `lease` records, if the transaction is its type's pass
 * (see scheduler/capacity-epoch.ts).
 */
function epochFor(ctx: TxContext, lease: Lease): number | undefined {
  const current = ctx.capacityEpoch;
  return current && current.resourceType === lease.resourceType && lease.gangId === null ? current.epoch : undefined;
}

/**
 * Same wait, for logging purposes: who holds a lock may change without the wait changing, and the
 * capacity epoch it was found in and when time alone ends it are the scheduler's bookkeeping.
 */
export function sameWait(previous: unknown, next: Blocker): boolean {
  if (previous === null || typeof previous !== 'object') return false;
  const { holders: _a, epoch: _e, until: _u, ...before } = previous as Blocker;
  const { holders: _b, epoch: _f, until: _v, ...after } = next;
  return sameJson(before, after);
}

/** Equal as JSON values, whatever the order of their keys (jsonb keeps its own). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
  );
}

/** The lease got what it waited for: forget the blocker and the backoff. */
export const clearedWait = { attempts: 0, blocker: null } as const;
