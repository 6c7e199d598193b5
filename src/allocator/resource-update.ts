import type { CommandKind, Resource } from '../generated/prisma/client.js';
import type { JobClaim } from '../queue/port.js';
import { scheduleLeaseUpdate, schedulePass, scheduleResourceUpdate } from './jobs.js';
import type { ActivationResult } from '../blueprints/implementation.js';
import { backoffDelayMs } from './backoff.js';
import { loadBlueprint, type LoadedBlueprint } from './blueprints.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { inUpdateTransaction } from './transaction.js';
import { PermanentFailure, TemporaryFailure } from '../failures.js';
import { scheduleHealthCheck } from './health.js';
import { releaseOwnedLeases } from './owned-leases.js';
import { resourceRuntime } from './runtime.js';
import { releaseSlotLocks } from './slot-locks.js';
import { liveResourceStatuses } from './state-machines.js';
import { countLogs, logResource, transitionResource } from './transitions.js';

/**
 * The single writer of a resource. The setup step of a PENDING resource and the health check of
 * an ACTIVE one run between two transactions, holding no lock, so that a blueprint may take as
 * long as it needs to open or probe it.
 */
export async function updateResource(deps: AllocatorDeps, resourceId: number, claim?: JobClaim): Promise<void> {
  const next = await inUpdateTransaction(
    deps,
    async (ctx) => {
      const locked = await lockResource(ctx, resourceId, true);
      if (!locked) return null;
      const { resource: after, leasesLive } = await handle(ctx, locked.resource, locked.commands);
      if (after.status === 'DESTROYED' || leasesLive) return null;
      const loaded = await loadBlueprint(ctx.tx, deps.registry, after.blueprintId);
      if (!loaded) return null;
      // What follows runs after this transaction, still as this job: the claim is kept until then.
      const keep = () => (ctx.claim = undefined);
      if (after.status === 'RELEASED' || after.status === 'BROKEN') {
        keep();
        return { step: 'teardown' as const, resource: after, loaded };
      }
      if (after.status === 'PENDING') {
        keep();
        return { step: 'setup' as const, resource: after, loaded };
      }
      if (!loaded.implementation.checkResource) return null;
      // Armed before the check runs: a process that dies inside the check still leaves the next one.
      scheduleHealthCheck(ctx, after, loaded);
      keep();
      return { step: 'check' as const, resource: after, loaded };
    },
    claim,
  );
  if (next?.step === 'setup') await runSetup(deps, next.resource, next.loaded);
  if (next?.step === 'check') await runCheck(deps, next.resource, next.loaded);
  if (next?.step === 'teardown') await runTeardown(deps, next.resource, next.loaded);
}

/**
 * The resource's row lock and, when `consume`, its commands, in one statement (see lockLease in
 * lease-update.ts for why that is safe). Null: no such resource, or DESTROYED.
 */
async function lockResource(
  ctx: TxContext,
  resourceId: number,
  consume: boolean,
): Promise<{ resource: Resource; commands: CommandKind[] } | null> {
  const [row] = await ctx.tx.$queryRaw<(Resource & { __commands: CommandKind[] | null })[]>`
    WITH r AS (SELECT * FROM "Resource" WHERE id = ${resourceId} FOR NO KEY UPDATE),
    c AS (
      UPDATE "Command" SET consumed = true, "consumedAt" = ${ctx.now}::timestamp
      WHERE ${consume} AND NOT consumed AND "targetResourceId" = ${resourceId}
        AND EXISTS (SELECT 1 FROM r WHERE r.status <> 'DESTROYED')
      RETURNING id, kind)
    SELECT r.*, (SELECT json_agg(c.kind ORDER BY c.id) FROM c) AS __commands FROM r`;
  if (!row || row.status === 'DESTROYED') return null;
  const { __commands: commands, ...resource } = row;
  return { resource, commands: commands ?? [] };
}

/** `leasesLive`: released or broken, but live leases are still on it (their updates are scheduled). */
async function handle(
  ctx: TxContext,
  initial: Resource,
  commands: CommandKind[],
): Promise<{ resource: Resource; leasesLive?: true }> {
  let resource = initial;
  for (const kind of commands) {
    if (!liveResourceStatuses.includes(resource.status)) continue;
    if (kind === 'RELEASE') {
      resource = await releaseResource(ctx, resource, 'command');
    } else {
      const [counted] = await ctx.tx.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM "Lease" WHERE "resourceId" = ${resource.id} AND status IN ('ACQUIRED', 'ACTIVE')`;
      const liveLeases = counted?.n ?? 0;
      // Re-checked under the lock: a lease may have arrived since the reclaim was asked for.
      if (resource.status === 'ACTIVE' && liveLeases === 0)
        resource = await releaseResource(ctx, resource, 'reclaimed');
      else await logResource(ctx, resource, { type: 'resource-reclaim-refused', data: { liveLeases } });
    }
  }
  if (liveResourceStatuses.includes(resource.status) && resource.until && resource.until <= ctx.now) {
    resource = await releaseResource(ctx, resource, 'expired');
  }
  if (resource.status === 'ACTIVE' && resource.drainingAt && resource.releaseWhenDrained) {
    // Drained: its last lease has ended (each lease's end wakes this update, see lease-update.ts).
    const [counted] = await ctx.tx.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM "Lease" WHERE "resourceId" = ${resource.id} AND status IN ('ACQUIRED', 'ACTIVE')`;
    if ((counted?.n ?? 0) === 0) resource = await releaseResource(ctx, resource, 'drained');
  }
  if (resource.status === 'RELEASED' || resource.status === 'BROKEN') {
    // Its leases end first (each lease's own update; they wake this one as they end): no lease is
    // ever live on a destroyed resource, nor on one being torn down.
    if (await wakeLiveLeases(ctx, resource)) return { resource, leasesLive: true };
    // A blueprint with a teardown does it outside this transaction first (see runTeardown).
    const loaded = await loadBlueprint(ctx.tx, ctx.deps.registry, resource.blueprintId);
    return { resource: loaded?.implementation.teardownResource ? resource : await destroyResource(ctx, resource) };
  }
  if (liveResourceStatuses.includes(resource.status) && resource.until)
    scheduleResourceUpdate(ctx, resource.id, resource.until);
  return { resource };
}

/** RELEASED; its leases see that in their own updates and release themselves (see handle). */
async function releaseResource(
  ctx: TxContext,
  resource: Resource,
  reason: 'command' | 'reclaimed' | 'expired' | 'drained',
): Promise<Resource> {
  return transitionResource(ctx, resource, 'RELEASED', { type: 'resource-released', data: { reason } });
}

/**
 * Schedules the update of every live lease on the resource; false when there is none. Read after
 * the resource's row lock: a grant share-locks the row and checks that it is ACTIVE, so a lease
 * granted before the release committed is seen here, and none is granted after it.
 */
async function wakeLiveLeases(ctx: TxContext, resource: Resource): Promise<boolean> {
  const leases = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Lease" WHERE "resourceId" = ${resource.id} AND status IN ('ACQUIRED', 'ACTIVE') ORDER BY id`;
  for (const lease of leases) scheduleLeaseUpdate(ctx, lease.id);
  return leases.length > 0;
}

async function destroyResource(ctx: TxContext, resource: Resource): Promise<Resource> {
  const loaded = await loadBlueprint(ctx.tx, ctx.deps.registry, resource.blueprintId);
  await loaded?.implementation.destroyResource?.(loaded.blueprint, resource);
  await releaseSlotLocks(ctx.tx, { resourceId: resource.id });
  await releaseOwnedLeases(ctx, resource.id);
  const destroyed = await transitionResource(ctx, resource, 'DESTROYED', { type: 'resource-destroyed', data: {} });
  await wakeLeasesOn(ctx, resource);
  return destroyed;
}

/** The resource changed in a way its leases and the waiting leases of its type care about. */
async function wakeLeasesOn(ctx: TxContext, resource: Resource): Promise<void> {
  const leases = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Lease" WHERE "resourceId" = ${resource.id} AND status IN ('ACQUIRED', 'ACTIVE')`;
  for (const lease of leases) scheduleLeaseUpdate(ctx, lease.id);
  // The lease it was built for, and any other waiting lease of the type, are the pass's.
  schedulePass(ctx, resource.type);
}

/**
 * BROKEN, and destroyed at once unless the blueprint tears down first; either way its leases and
 * the waiting leases are woken now, so that owners see the break without waiting for the teardown.
 */
async function breakResource(
  ctx: TxContext,
  resource: Resource,
  loaded: LoadedBlueprint,
  data: { message: string; reason: 'activation-failed' | 'health-check-failed'; hopeless?: true },
): Promise<void> {
  const broken = await transitionResource(ctx, resource, 'BROKEN', { type: 'resource-broken', data });
  if (!loaded.implementation.teardownResource && !(await wakeLiveLeases(ctx, broken))) {
    await destroyResource(ctx, broken);
    return;
  }
  await wakeLeasesOn(ctx, broken);
  scheduleResourceUpdate(ctx, broken.id);
}

/**
 * The teardown of a RELEASED or BROKEN resource, outside any lock (it may talk to a slow host or
 * provisioner). A failure is retried with backoff a few times, then the rows are destroyed anyway
 * with the failure logged: a host that is gone for good must not hold slot locks forever.
 */
async function runTeardown(deps: AllocatorDeps, resource: Resource, loaded: LoadedBlueprint): Promise<void> {
  let failure: { message: string; permanent: boolean; retryAfterMs?: number | undefined } | null = null;
  try {
    await loaded.implementation.teardownResource?.(loaded.blueprint, resource, resourceRuntime(deps, resource));
  } catch (error) {
    failure = {
      message: error instanceof Error ? error.message : String(error),
      permanent: error instanceof PermanentFailure,
      retryAfterMs: error instanceof TemporaryFailure ? error.retryAfterMs : undefined,
    };
  }
  await inUpdateTransaction(deps, async (ctx) => {
    const current = (await lockResource(ctx, resource.id, false))?.resource;
    if (!current || (current.status !== 'RELEASED' && current.status !== 'BROKEN')) return;
    if (failure) {
      const attempt = (await countLogs(ctx, { resourceId: current.id }, 'resource-teardown-failed')) + 1;
      const { message, permanent } = failure;
      await logResource(ctx, current, { type: 'resource-teardown-failed', data: { message, attempt, permanent } });
      if (!permanent && attempt < deps.options.teardownAttempts) {
        const delay = failure.retryAfterMs ?? backoffDelayMs(attempt, deps.options);
        scheduleResourceUpdate(ctx, current.id, new Date(ctx.now.getTime() + delay));
        return;
      }
      await logResource(ctx, current, { type: 'resource-teardown-abandoned', data: { message, attempts: attempt } });
    }
    await destroyResource(ctx, current);
  });
}

type SetupOutcome =
  | ActivationResult
  | { status: 'temporary'; message: string; retryAfterMs?: number }
  | { status: 'permanent'; message: string; hopeless?: boolean };

async function runSetup(deps: AllocatorDeps, resource: Resource, loaded: LoadedBlueprint): Promise<void> {
  let outcome: SetupOutcome;
  try {
    outcome = loaded.implementation.activateResource
      ? await loaded.implementation.activateResource(loaded.blueprint, resource, resourceRuntime(deps, resource))
      : { status: 'active' };
  } catch (error) {
    if (error instanceof TemporaryFailure)
      outcome = {
        status: 'temporary',
        message: error.message,
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
      };
    else if (error instanceof PermanentFailure)
      outcome = { status: 'permanent', message: error.message, hopeless: error.hopeless };
    else outcome = { status: 'permanent', message: error instanceof Error ? error.message : String(error) };
  }
  await inUpdateTransaction(deps, async (ctx) => {
    const current = (await lockResource(ctx, resource.id, false))?.resource;
    // Released (or otherwise moved on) while the setup ran: its own update deals with it.
    if (!current || current.status !== 'PENDING') return;
    switch (outcome.status) {
      case 'active': {
        const attributes = { ...(current.attributes as Record<string, unknown>), ...(outcome.attributes ?? {}) };
        const active = await transitionResource(
          ctx,
          current,
          'ACTIVE',
          { type: 'resource-activated', data: {} },
          { attributes },
        );
        await wakeLeasesOn(ctx, active);
        scheduleHealthCheck(ctx, active, loaded);
        return;
      }
      case 'wait':
        scheduleResourceUpdate(
          ctx,
          current.id,
          new Date(ctx.now.getTime() + (outcome.retryAfterMs ?? deps.options.activationPollMs)),
        );
        return;
      case 'temporary': {
        await logResource(ctx, current, {
          type: 'resource-activation-failed-temporarily',
          data: { message: outcome.message },
        });
        const failures = await countLogs(ctx, { resourceId: current.id }, 'resource-activation-failed-temporarily');
        const delay = outcome.retryAfterMs ?? backoffDelayMs(failures, deps.options);
        scheduleResourceUpdate(ctx, current.id, new Date(ctx.now.getTime() + delay));
        return;
      }
      case 'permanent':
        await breakResource(ctx, current, loaded, {
          message: outcome.message,
          reason: 'activation-failed',
          ...(outcome.hopeless ? { hopeless: true as const } : {}),
        });
        return;
    }
  });
}

/**
 * The health check of an ACTIVE resource. A permanent failure breaks it and destroys it at once;
 * destroying it wakes its leases, whose own updates break them (see lease-update.ts checkActive),
 * and the waiting leases of its type, which may now build a replacement.
 *
 * Any other error is taken as temporary: a probe that merely could not reach the resource (a
 * network error, a bug in the probe) must not tear down a host that leases are using.
 */
async function runCheck(deps: AllocatorDeps, resource: Resource, loaded: LoadedBlueprint): Promise<void> {
  let failure: { permanent: boolean; message: string; retryAfterMs?: number | undefined } | null = null;
  try {
    await loaded.implementation.checkResource?.(loaded.blueprint, resource, resourceRuntime(deps, resource));
  } catch (error) {
    failure = {
      permanent: error instanceof PermanentFailure,
      message: error instanceof Error ? error.message : String(error),
      retryAfterMs: error instanceof TemporaryFailure ? error.retryAfterMs : undefined,
    };
  }
  if (!failure) return;
  const { permanent, message, retryAfterMs } = failure;
  await inUpdateTransaction(deps, async (ctx) => {
    const current = (await lockResource(ctx, resource.id, false))?.resource;
    // Released (or otherwise moved on) while the check ran: its own update deals with it.
    if (!current || current.status !== 'ACTIVE') return;
    if (permanent) {
      await breakResource(ctx, current, loaded, { message, reason: 'health-check-failed' });
      return;
    }
    await logResource(ctx, current, { type: 'resource-check-failed-temporarily', data: { message } });
    if (retryAfterMs !== undefined) scheduleResourceUpdate(ctx, current.id, new Date(ctx.now.getTime() + retryAfterMs));
  });
}
