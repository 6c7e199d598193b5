import { type CommandKind, type Lease, type Resource } from '../generated/prisma/client.js';
import type { ActivationResult } from '../blueprints/implementation.js';
import type { JobClaim } from '../queue/port.js';
import { scheduleLeaseUpdate, schedulePass, scheduleResourceUpdate } from './jobs.js';
import { backoffDelayMs } from './backoff.js';
import {
  blueprintOf,
  blueprintSql,
  decodeResource,
  findResourceForLeaseUpdate,
  findResourceWithBlueprint,
  type BlueprintColumn,
  type LoadedBlueprint,
} from './blueprints.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { inUpdateTransaction } from './transaction.js';
import { TemporaryFailure } from '../failures.js';
import {
  breakLease,
  brokenMessage,
  destroyLease,
  giveUpAfterBrokenBuilds,
  releaseLease,
  type HeldResource,
} from './lease-end.js';
import { leaseRuntime } from './runtime.js';
import { releaseSlotLocks } from './slot-locks.js';
import { leaseOnResourceStatuses, liveLeaseStatuses } from './state-machines.js';
import { countLogs, logLease, transitionLease } from './transitions.js';
import { sendCommand } from './commands.js';
import { waitAndRetry } from './waiting.js';

/**
 * The single writer of a lease. Holds the lease row lock for the whole transaction, so no other
 * process can write it at the same time; consumes its commands in order, then acts on its status.
 */
export async function updateLease(deps: AllocatorDeps, leaseId: number, claim?: JobClaim): Promise<void> {
  const setup = await inUpdateTransaction(
    deps,
    async (ctx): Promise<LeaseSetup | null> => {
      // The job ends with this transaction unless a setup follows (which keeps the claim, below).
      ctx.endsJob = true;
      const locked = await lockLease(ctx, leaseId, true);
      if (!locked) return null;
      if (locked.lease.status === 'DESTROYED') {
        wakeEndingResource(ctx, locked.lease, locked.held);
        return null;
      }
      let lease = locked.lease;

      // A lost holder first: a gang's parts share it, and the part that found it lost tells the
      // others to release, so each of them, looking now, says why (holder-lost), not `command`.
      const lostAt = holderDeadline(lease);
      if (liveLeaseStatuses.includes(lease.status) && lostAt && lostAt <= ctx.now) {
        await logLease(ctx, lease, {
          type: 'lease-holder-lost',
          data: { lastSeenAt: lease.lastSeenAt!.toISOString(), heartbeatSeconds: lease.heartbeatSeconds! },
        });
        await releaseOtherParts(ctx, lease);
        lease = await releaseLease(ctx, lease, 'holder-lost', locked.held);
      }
      for (const kind of locked.commands) {
        if (kind === 'RELEASE' && liveLeaseStatuses.includes(lease.status)) {
          lease = await releaseLease(ctx, lease, 'command', locked.held);
        }
      }
      if (liveLeaseStatuses.includes(lease.status) && lease.until && lease.until <= ctx.now) {
        lease = await releaseLease(ctx, lease, 'expired', locked.held);
      }

      if (leaseOnResourceStatuses.includes(lease.status) && locked.held?.resource.status === 'RELEASED') {
        // A gang ends whole, as when the resource broke (checkActive), which this comes before.
        await releaseOtherParts(ctx, lease);
        lease = await releaseLease(ctx, lease, 'resource-released', locked.held);
      }

      const next: { setup?: LeaseSetup } = {};
      lease = await step(ctx, lease, locked.held, next);
      wakeEndingResource(ctx, lease, locked.held);

      // The expiry job: a delayed update at `until`, so that expiry needs no polling.
      if (liveLeaseStatuses.includes(lease.status) && lease.until) scheduleLeaseUpdate(ctx, lease.id, lease.until);
      // The liveness check likewise: heartbeats only move lastSeenAt (one cheap statement each);
      // this job, when it comes, looks again and moves itself to the new deadline.
      const deadline = holderDeadline(lease);
      if (liveLeaseStatuses.includes(lease.status) && deadline) scheduleLeaseUpdate(ctx, lease.id, deadline);
      // The setup runs after this transaction, still as this job: the claim is kept until then.
      if (next.setup) ctx.claim = undefined;
      return next.setup ?? null;
    },
    claim,
  );
  if (setup) await runLeaseSetup(deps, setup);
}

/** When a heartbeat lease's holder counts as lost unless it is seen again; null without a heartbeat. */
export function holderDeadline(lease: Pick<Lease, 'heartbeatSeconds' | 'lastSeenAt'>): Date | null {
  if (lease.heartbeatSeconds === null || lease.lastSeenAt === null) return null;
  return new Date(lease.lastSeenAt.getTime() + lease.heartbeatSeconds * 1000);
}

/**
 * A released or broken resource is destroyed (a draining one, released) only once no live lease is
 * on it (resource-update.ts):
 * a lease that has ended tells it to look again. Also from a lease already DESTROYED: its end may
 * have committed while the resource, counting it still live, was being released.
 */
function wakeEndingResource(ctx: TxContext, lease: Lease, held: HeldResource | null): void {
  if (!held) return;
  const { status, drainingAt, releaseWhenDrained } = held.resource;
  const onIt = lease.resourceId === held.resource.id && leaseOnResourceStatuses.includes(lease.status);
  const waiting = status === 'RELEASED' || status === 'BROKEN' || (drainingAt !== null && releaseWhenDrained);
  if (waiting && !onIt) scheduleResourceUpdate(ctx, held.resource.id);
}

interface LockedLease {
  lease: Lease;
  /** Its unconsumed commands, oldest first, now consumed. */
  commands: CommandKind[];
  held: HeldResource | null;
}

/**
 * One statement for what every update starts with: the lease's row lock, its commands (when
 * `consume`) and the resource it is on (with that resource's blueprint), instead of a round trip
 * for each.
 *
 * NO KEY UPDATE, not UPDATE: rows that merely reference the lease (commands, logs, slot locks) can
 * still be inserted by others meanwhile, which rules out lock cycles with resource updates. The
 * commands are consumed only once the lock is held (EXISTS on the locked row); one committed
 * after this statement's snapshot is left for the rerun its sender scheduled.
 */
async function lockLease(ctx: TxContext, leaseId: number, consume: boolean): Promise<LockedLease | undefined> {
  const [row] = await ctx.tx.$queryRaw<
    (Lease & {
      __commands: CommandKind[] | null;
      __resource: Record<string, unknown> | null;
      __blueprint: BlueprintColumn | null;
    })[]
  >`
    WITH l AS (SELECT * FROM "Lease" WHERE id = ${leaseId} FOR NO KEY UPDATE),
    c AS (
      UPDATE "Command" SET consumed = true, "consumedAt" = ${ctx.now}::timestamp
      WHERE ${consume} AND NOT consumed AND "targetLeaseId" = ${leaseId} AND EXISTS (SELECT 1 FROM l)
      RETURNING id, kind)
    SELECT l.*, (SELECT json_agg(c.kind ORDER BY c.id) FROM c) AS __commands,
           to_jsonb(r) AS __resource, CASE WHEN r.id IS NULL THEN NULL ELSE ${blueprintSql(ctx.deps.registry, 'b')} END AS __blueprint
    FROM l LEFT JOIN "Resource" r ON r.id = l."resourceId" LEFT JOIN "Blueprint" b ON b.id = r."blueprintId"`;
  if (!row) return undefined;
  const { __commands: commands, __resource: resourceRow, __blueprint: column, ...lease } = row;
  const resource = resourceRow ? decodeResource(resourceRow) : null;
  // The lock waited for the lease's writer and returns the row as it committed, but the join read
  // the statement's snapshot, taken before that commit: a resource the writer built and granted
  // the lease (a pass) is not in it. Resources are never deleted, so it is read again.
  const held = resource
    ? { resource, loaded: await blueprintOf(ctx.tx, ctx.deps.registry, resource.blueprintId, column) }
    : lease.resourceId !== null
      ? await findResourceWithBlueprint(ctx.tx, ctx.deps.registry, lease.resourceId)
      : null;
  return { lease, commands: commands ?? [], held };
}

async function step(
  ctx: TxContext,
  lease: Lease,
  held: HeldResource | null,
  next: { setup?: LeaseSetup },
): Promise<Lease> {
  // `held` was read for the lease as locked; a transition in between (PENDING again) leaves it stale.
  const current = held && held.resource.id === lease.resourceId ? held : null;
  switch (lease.status) {
    case 'PENDING':
      return waitingLease(ctx, lease);
    case 'ACQUIRED':
      return progressAcquired(ctx, lease, current, next);
    case 'ACTIVE':
      return checkActive(ctx, lease, current);
    case 'RELEASED':
    case 'BROKEN':
      return destroyLease(ctx, lease, current);
    case 'DESTROYED':
      return lease;
  }
}

/**
 * A PENDING lease is its type's scheduling pass's to grant (scheduler/pass.ts); its own update
 * only ends a wait past `waitUntil`, and otherwise asks for a pass (update-lease on a waiting
 * lease means "look at it now").
 */
async function waitingLease(ctx: TxContext, lease: Lease): Promise<Lease> {
  if (lease.waitUntil && lease.waitUntil <= ctx.now) {
    const waited = Math.round((ctx.now.getTime() - lease.createdAt.getTime()) / 1000);
    return breakLease(ctx, lease, 'wait-timeout', `still waiting after ${waited} s`);
  }
  schedulePass(ctx, lease.resourceType);
  return lease;
}

const wasBroken = (resource: { status: string; statusReason: string | null }) =>
  resource.status === 'BROKEN' || (resource.status === 'DESTROYED' && resource.statusReason === 'resource-broken');

/** ACQUIRED: activate once the resource is open; reacquire if the resource went away first. */
async function progressAcquired(
  ctx: TxContext,
  lease: Lease,
  held: HeldResource | null,
  next: { setup?: LeaseSetup },
): Promise<Lease> {
  // The held row was read without a lock: take it again locked before acting on "still open".
  const live = held && (held.resource.status === 'PENDING' || held.resource.status === 'ACTIVE');
  const resource = live ? await findResourceForLeaseUpdate(ctx.tx, held.resource.id) : (held?.resource ?? null);
  if (!resource || (resource.status !== 'PENDING' && resource.status !== 'ACTIVE')) {
    // The lease leaves a resource that waits for its leases to end. `held` may predate the
    // resource's release (read before it committed; the lock above waited for it), so the
    // wake-up at the end of the update would not know: the resource is woken here. Its own update
    // woke this lease's, but a lease that goes back to PENDING no longer names the resource.
    if (resource && (resource.status === 'RELEASED' || resource.status === 'BROKEN'))
      scheduleResourceUpdate(ctx, resource.id);
    if (resource && wasBroken(resource)) {
      const gaveUp = await giveUpAfterBrokenBuilds(ctx, lease);
      if (gaveUp) return gaveUp;
    }
    if (lease.gangId !== null) return releaseGang(ctx, lease, held);
    await releaseSlotLocks(ctx.tx, { leaseId: lease.id });
    const pending = await transitionLease(
      ctx,
      lease,
      'PENDING',
      {
        type: 'lease-reacquiring',
        data: { resourceId: lease.resourceId ?? 0, resourceStatus: resource?.status ?? 'missing' },
      },
      { resourceId: null, acquiredAt: null },
    );
    schedulePass(ctx, lease.resourceType);
    return pending;
  }
  if (resource.status === 'PENDING')
    return waitAndRetry(ctx, lease, { reason: 'waiting-for-resource-activation', resourceId: resource.id });
  const loaded = held?.loaded ?? null;
  const activation = loaded?.implementation.activateLease?.(loaded.blueprint, resource, lease) ?? {
    status: 'active' as const,
  };
  if (activation.status === 'wait') {
    scheduleLeaseUpdate(
      ctx,
      lease.id,
      new Date(ctx.now.getTime() + (activation.retryAfterMs ?? ctx.deps.options.activationPollMs)),
    );
    return lease;
  }
  if (loaded?.implementation.setupLease) {
    // The long part runs after this transaction, holding no lock (see runLeaseSetup).
    next.setup = { lease, resource, loaded };
    return lease;
  }
  return activate(ctx, lease, resource.id);
}

/**
 * A gang part whose resource went away is not acquired again on its own: that would be holding
 * the other parts while waiting for this one. The whole gang is released instead (this part now,
 * the others by command); its owner asks again.
 */
async function releaseGang(ctx: TxContext, lease: Lease, held: HeldResource | null): Promise<Lease> {
  await releaseOtherParts(ctx, lease);
  return releaseLease(ctx, lease, 'gang-part-lost', held);
}

/** A gang's parts end together: the others of `lease`'s gang are told to release. */
async function releaseOtherParts(ctx: TxContext, lease: Lease): Promise<void> {
  if (lease.gangId === null) return;
  const others = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Lease" WHERE "gangId" = ${lease.gangId} AND id <> ${lease.id}
      AND status IN ('PENDING', 'ACQUIRED', 'ACTIVE') ORDER BY id`;
  for (const { id } of others) await sendCommand(ctx, 'RELEASE', { leaseId: id }, null);
}

const activate = (ctx: TxContext, lease: Lease, resourceId: number) =>
  transitionLease(ctx, lease, 'ACTIVE', { type: 'lease-activated', data: { resourceId } }, { attempts: 0 });

/**
 * ACTIVE: a lease whose resource broke is broken too (Drydock leaves it active); one whose
 * resource went away without breaking is released.
 */
async function checkActive(ctx: TxContext, lease: Lease, held: HeldResource | null): Promise<Lease> {
  const resource = held?.resource;
  if (!resource) return lease;
  if (wasBroken(resource) || resource.status === 'RELEASED' || resource.status === 'DESTROYED')
    await releaseOtherParts(ctx, lease);
  if (wasBroken(resource)) {
    return breakLease(ctx, lease, 'resource-broken', await brokenMessage(ctx, resource.id), held);
  }
  if (resource.status === 'RELEASED' || resource.status === 'DESTROYED') {
    return releaseLease(ctx, lease, 'resource-released', held);
  }
  return lease;
}

interface LeaseSetup {
  lease: Lease;
  resource: Resource;
  loaded: LoadedBlueprint;
}

/**
 * The blueprint's setup of an ACQUIRED lease (check out a commit), outside any transaction; the
 * lease keeps its slot locks meanwhile. The outcome is applied under the lease's lock, and only if
 * the lease is still ACQUIRED on the same resource (a release during setup wins).
 */
async function runLeaseSetup(deps: AllocatorDeps, { lease, resource, loaded }: LeaseSetup): Promise<void> {
  let outcome: ActivationResult | { status: 'temporary' | 'permanent'; message: string; retryAfterMs?: number };
  try {
    outcome = await loaded.implementation.setupLease!(loaded.blueprint, resource, lease, leaseRuntime(deps, lease));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    outcome =
      error instanceof TemporaryFailure
        ? {
            status: 'temporary',
            message,
            ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
          }
        : { status: 'permanent', message };
  }
  await inUpdateTransaction(deps, async (ctx) => {
    // Commands are left for the next update (their senders scheduled it): this one only applies
    // the setup's outcome.
    const current = (await lockLease(ctx, lease.id, false))?.lease;
    if (!current || current.status !== 'ACQUIRED' || current.resourceId !== resource.id) return;
    switch (outcome.status) {
      case 'active':
        await activate(ctx, current, resource.id);
        return;
      case 'wait':
        scheduleLeaseUpdate(
          ctx,
          current.id,
          new Date(ctx.now.getTime() + (outcome.retryAfterMs ?? deps.options.activationPollMs)),
        );
        return;
      case 'temporary': {
        await logLease(ctx, current, { type: 'lease-setup-failed-temporarily', data: { message: outcome.message } });
        const failures = await countLogs(ctx, { leaseId: current.id }, 'lease-setup-failed-temporarily');
        const delay = outcome.retryAfterMs ?? backoffDelayMs(failures, deps.options);
        scheduleLeaseUpdate(ctx, current.id, new Date(ctx.now.getTime() + delay));
        return;
      }
      case 'permanent':
        await breakLease(ctx, current, 'setup-failed', outcome.message);
        return;
    }
  });
}
