import { Prisma, type Lease } from '../../generated/prisma/client.js';
import { askAgainJobSql } from '../../queue/jobs.js';
import type { GrantBatch, TxContext } from '../context.js';
import { schedulePass, scheduleResourceUpdate } from '../jobs.js';
import { stillWaiting } from '../lease-sql.js';
import { publishLog } from '../logs.js';
import { assertLeaseTransition } from '../state-machines.js';
import { clearedWait, sameWait, type Blocker } from '../waiting.js';

/** A waiting lease the pass did not serve without trying it, and why. */
export interface Blocked {
  lease: { id: number; status: string; blocker: unknown };
  blocker: Blocker;
}

/**
 * Records each blocker that changed, with its log (as waitAndRetry logs a wait: only when it
 * changed), for every lease of `blocked` in one statement.
 */
export async function writeBlockers(ctx: TxContext, blocked: readonly Blocked[]): Promise<void> {
  const changed = blocked.filter((b) => !sameWait(b.lease.blocker, b.blocker));
  if (changed.length === 0) return;
  const rows = await ctx.tx.$queryRaw<{ leaseId: number; log: bigint }[]>`
    WITH q AS (
      SELECT * FROM unnest(${changed.map((b) => b.lease.id)}::int[], ${changed.map((b) => JSON.stringify(b.blocker))}::text[])
        AS q(id, blocker)),
    u AS (
      UPDATE "Lease" l SET blocker = q.blocker::jsonb, "updatedAt" = ${ctx.now}::timestamp
      FROM q WHERE l.id = q.id RETURNING l.id, q.blocker::jsonb AS blocker),
    g AS (
      INSERT INTO "Log" (type, data, "createdAt", "leaseId")
      SELECT 'waiting-for-resources',
             jsonb_build_object('reason', u.blocker->'reason', 'blockers', u.blocker - 'reason'),
             ${ctx.now}::timestamp, u.id
      FROM u ORDER BY u.id RETURNING id, "leaseId")
    SELECT "leaseId", id AS log FROM g`;
  const statusOf = new Map(changed.map((b) => [b.lease.id, b.lease.status]));
  for (const row of rows)
    publishLog(ctx.after, { leaseId: row.leaseId }, row.log, { lease: statusOf.get(row.leaseId) ?? 'PENDING' });
}

interface PlannedGrant {
  lease: Lease;
  resourceId: number;
}

export interface GrantCheckpoint {
  readonly planned: readonly PlannedGrant[];
  readonly size: number;
}

/**
 * The pass's plain grants (see GrantBatch), written by flush in one statement: each lease ACTIVE
 * on its resource with its fence and its two logs, acquired then activated, as a lease's own
 * acquisition writes them (acquire.ts), in the order the pass granted them. A grant whose resource is no longer ACTIVE under the share lock is not
 * written; its lease stays PENDING and the type's next pass serves it.
 *
 * Until flushed, the pool as the database shows it lacks these grants. They take no slot lock, so
 * a read in between can only see a resource as less loaded than it is, never grant what a lock
 * would refuse; a gang, which reads the pool again, is served after a flush.
 */
export class PassGrants implements GrantBatch {
  private planned: PlannedGrant[] = [];

  /** Grants planned and not yet sent. */
  get size(): number {
    return this.planned.length;
  }

  /** What is planned now, to go back to if a try is undone (restore). */
  checkpoint(): GrantCheckpoint {
    // flush replaces the array and plan only appends: the first `size` entries stay as they are.
    return { planned: this.planned, size: this.planned.length };
  }

  /**
   * Back to `checkpoint`: a try undone by rolling back to a savepoint it took before its first
   * write (in-order.ts tryWatchingMark). What it planned is dropped; what a flush during it wrote
   * (a view read, a pool widened, both of which flush first) went with the savepoint, and is
   * planned again.
   */
  restore(checkpoint: GrantCheckpoint): void {
    this.planned = checkpoint.planned.slice(0, checkpoint.size);
  }

  plan(ctx: TxContext, lease: Lease, resourceId: number): Lease {
    assertLeaseTransition(lease.id, lease.status, 'ACQUIRED');
    assertLeaseTransition(lease.id, 'ACQUIRED', 'ACTIVE');
    this.planned.push({ lease, resourceId });
    const now = ctx.now;
    return {
      ...lease,
      status: 'ACTIVE',
      resourceId,
      acquiredAt: now,
      activatedAt: now,
      updatedAt: now,
      ...clearedWait,
    };
  }

  async flush(ctx: TxContext): Promise<void> {
    const planned = this.planned;
    if (planned.length === 0) return;
    // Sent before they are taken off: a statement refused (watched-tx.ts) leaves them planned.
    const rows = this.write(ctx, planned);
    this.planned = [];
    const written = this.recordWritten(ctx, planned, await rows);
    // A resource that moved on meanwhile: its leases wait for the next pass.
    if (planned.some((p) => !written.has(p.lease.id)))
      schedulePass(ctx, planned[0]!.lease.resourceType, ctx.now, { capacity: false });
  }

  /**
   * The pass's last write: sent without waiting for its answer, so that it reaches PostgreSQL in
   * one round trip with the transaction's last statement (the jobs and the commit), when nothing
   * that statement writes depends on the answer. Two things could: a lease held for a resource
   * of its own (a working copy's host lease), whose resource is told of the grant by a job; and a
   * grant not written because its resource moved on since the pass read it, which asks for the
   * pass again. With such a lease, outside a pass that runs as its own job, or on PGlite, it is
   * flush. A lease it leaves PENDING marks the pass's job to run again (`rerun`, as a request
   * made while the pass ran would), in the same statement: the last one finds the job asked for
   * again, and keeps it claimed for the worker to run at once, or releases it for the later time a
   * request made meanwhile asked for (a paced pass), as for any request (writeScheduledJobs).
   */
  async finish(ctx: TxContext): Promise<void> {
    const planned = this.planned;
    if (planned.length === 0) return;
    // Only where the last statement carries the commit (plain pg): PGlite runs in this process,
    // so there is no round trip to save.
    if (
      !ctx.tx.$queryRawAndCommit ||
      !ctx.claim ||
      !ctx.endsJob ||
      !ctx.unanswered ||
      planned.some((p) => p.lease.ownerResourceId !== null)
    )
      return this.flush(ctx);
    this.planned = [];
    const answer = this.write(ctx, planned, ctx.claim.job).then((rows) => void this.recordWritten(ctx, planned, rows));
    // Waited for by the transaction (transaction.ts), which reports its failure.
    answer.catch(() => {});
    ctx.unanswered.push({ answer });
  }

  /**
   * `rerunJob`: the job marked to run again if a planned grant is not written. Told in this
   * statement, the pass's last one need not look the leases up again: a plan PostgreSQL keeps
   * from the lease table's first minutes scans it, on every pass, however large it has grown.
   */
  private write(
    ctx: TxContext,
    planned: { lease: Lease; resourceId: number }[],
    rerunJob: { id: bigint; token: string } | null = null,
  ) {
    // Each grant takes its resource's next fence (as acquire.ts's grants do), numbered in grant
    // order; the resource's row update is also the guard: it waits for a release being committed
    // and then finds the resource no longer ACTIVE.
    return ctx.tx.$queryRaw<{ id: number; ownerResourceId: number | null; logs: string[] }[]>`
      WITH q AS (
        SELECT * FROM unnest(${planned.map((p) => p.lease.id)}::int[], ${planned.map((p) => p.resourceId)}::int[])
          WITH ORDINALITY AS q(lease, resource, n)),
      f AS (
        UPDATE "Resource" r SET "fenceCounter" = r."fenceCounter" + c.k
        FROM (SELECT resource, count(*)::int AS k FROM q GROUP BY resource ORDER BY resource) c
        WHERE r.id = c.resource AND r.status = 'ACTIVE' AND r."drainingAt" IS NULL
        RETURNING r.id, r."fenceCounter" AS top, c.k),
      x AS (
        SELECT q.lease, q.resource, q.n,
               f.top - f.k + row_number() OVER (PARTITION BY q.resource ORDER BY q.n) AS fence
        FROM q JOIN f ON f.id = q.resource),
      u AS (
        UPDATE "Lease" l SET status = 'ACTIVE', "resourceId" = x.resource, fence = x.fence,
          "acquiredAt" = ${ctx.now}::timestamp, "activatedAt" = ${ctx.now}::timestamp,
          "updatedAt" = ${ctx.now}::timestamp, attempts = 0, blocker = NULL
        FROM x WHERE l.id = x.lease AND ${stillWaiting('l')}
        RETURNING l.id, l."resourceId", l."ownerResourceId", x.n),
      g AS (
        INSERT INTO "Log" (type, data, "createdAt", "leaseId", "resourceId")
        SELECT e.type, jsonb_build_object('resourceId', u."resourceId"), ${ctx.now}::timestamp, u.id, u."resourceId"
        FROM u CROSS JOIN (VALUES (1, 'lease-acquired'), (2, 'lease-activated')) AS e(n, type)
        ORDER BY u.n, e.n
        RETURNING id, "leaseId"),
      r AS (${askAgainJobSql(rerunJob, Prisma.sql`EXISTS (SELECT 1 FROM q WHERE q.lease NOT IN (SELECT u.id FROM u))`)})
      SELECT u.id, u."ownerResourceId",
             ARRAY(SELECT g.id::text FROM g WHERE g."leaseId" = u.id ORDER BY g.id) AS logs
      FROM u ORDER BY u.n`;
  }

  /** The written grants' events and follow-ups; returns the leases written. */
  private recordWritten(
    ctx: TxContext,
    planned: { lease: Lease; resourceId: number }[],
    rows: { id: number; ownerResourceId: number | null; logs: string[] }[],
  ): Set<number> {
    const written = new Set<number>();
    for (const row of rows) {
      written.add(row.id);
      const resourceId = planned.find((p) => p.lease.id === row.id)!.resourceId;
      const [acquired, activated] = row.logs;
      publishLog(ctx.after, { leaseId: row.id, resourceId }, BigInt(acquired!), { lease: 'ACQUIRED' });
      publishLog(ctx.after, { leaseId: row.id, resourceId }, BigInt(activated!), { lease: 'ACTIVE' });
      // A resource that holds this lease for itself (a working copy's host) waits on it: tell it.
      if (row.ownerResourceId !== null) scheduleResourceUpdate(ctx, row.ownerResourceId);
    }
    return written;
  }
}
