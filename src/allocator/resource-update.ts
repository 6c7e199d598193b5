import type { Resource } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate, scheduleResourceUpdate } from '../queue/jobs.js';
import type { ActivationResult } from '../blueprints/implementation.js';
import { backoffDelayMs } from './backoff.js';
import { loadBlueprint, type LoadedBlueprint } from './blueprints.js';
import { consumeCommands, sendCommand } from './commands.js';
import { inTransaction, type AllocatorDeps, type TxContext } from './context.js';
import { PermanentFailure, TemporaryFailure } from './errors.js';
import { scheduleHealthCheck } from './health.js';
import { releaseSlotLocks } from './slot-locks.js';
import { liveResourceStatuses } from './state-machines.js';
import { logResource, transitionResource } from './transitions.js';
import { wakeWaitingLeases } from './wake.js';

/**
 * The single writer of a resource. The setup step of a PENDING resource and the health check of
 * an ACTIVE one run between two transactions, holding no lock, so that a blueprint may take as
 * long as it needs to open or probe it.
 */
export async function updateResource(deps: AllocatorDeps, resourceId: number): Promise<void> {
  const next = await inTransaction(deps, async (ctx) => {
    const resource = await lockResource(ctx, resourceId);
    if (!resource) return null;
    const after = await handle(ctx, resource);
    if (after.status !== 'PENDING' && after.status !== 'ACTIVE') return null;
    const loaded = await loadBlueprint(ctx.tx, deps.registry, after.blueprintId);
    if (!loaded) return null;
    if (after.status === 'PENDING') return { step: 'setup' as const, resource: after, loaded };
    if (!loaded.implementation.checkResource) return null;
    // Armed before the check runs: a process that dies inside the check still leaves the next one.
    scheduleHealthCheck(ctx, after, loaded);
    return { step: 'check' as const, resource: after, loaded };
  });
  if (next?.step === 'setup') await runSetup(deps, next.resource, next.loaded);
  if (next?.step === 'check') await runCheck(deps, next.resource, next.loaded);
}

async function lockResource(ctx: TxContext, resourceId: number): Promise<Resource | null> {
  const [resource] = await ctx.tx.$queryRaw<
    Resource[]
  >`SELECT * FROM "Resource" WHERE id = ${resourceId} FOR NO KEY UPDATE`;
  return !resource || resource.status === 'DESTROYED' ? null : resource;
}

async function handle(ctx: TxContext, initial: Resource): Promise<Resource> {
  let resource = initial;
  for (const command of await consumeCommands(ctx, { resourceId: resource.id })) {
    if (!liveResourceStatuses.includes(resource.status)) continue;
    if (command.kind === 'RELEASE') {
      resource = await releaseResource(ctx, resource, 'command');
    } else {
      const liveLeases = await ctx.tx.lease.count({
        where: { resourceId: resource.id, status: { in: ['ACQUIRED', 'ACTIVE'] } },
      });
      // Re-checked under the lock: a lease may have arrived since the reclaim was asked for.
      if (resource.status === 'ACTIVE' && liveLeases === 0)
        resource = await releaseResource(ctx, resource, 'reclaimed');
      else await logResource(ctx, resource, { type: 'resource-reclaim-refused', data: { liveLeases } });
    }
  }
  if (liveResourceStatuses.includes(resource.status) && resource.until && resource.until <= ctx.now) {
    resource = await releaseResource(ctx, resource, 'expired');
  }
  if (resource.status === 'RELEASED' || resource.status === 'BROKEN') return destroyResource(ctx, resource);
  if (liveResourceStatuses.includes(resource.status) && resource.until)
    scheduleResourceUpdate(ctx, resource.id, resource.until);
  return resource;
}

/** RELEASED: every lease on it is told to release (the leases are theirs to write, not ours). */
async function releaseResource(
  ctx: TxContext,
  resource: Resource,
  reason: 'command' | 'reclaimed' | 'expired',
): Promise<Resource> {
  const released = await transitionResource(ctx, resource, 'RELEASED', { type: 'resource-released', data: { reason } });
  const leases = await ctx.tx.lease.findMany({
    where: { resourceId: resource.id, status: { in: ['ACQUIRED', 'ACTIVE'] } },
    select: { id: true },
  });
  for (const lease of leases) await sendCommand(ctx, 'RELEASE', { leaseId: lease.id }, null);
  return released;
}

async function destroyResource(ctx: TxContext, resource: Resource): Promise<Resource> {
  const loaded = await loadBlueprint(ctx.tx, ctx.deps.registry, resource.blueprintId);
  await loaded?.implementation.destroyResource?.(loaded.blueprint, resource);
  await releaseSlotLocks(ctx.tx, { resourceId: resource.id });
  const destroyed = await transitionResource(ctx, resource, 'DESTROYED', { type: 'resource-destroyed', data: {} });
  await wakeLeasesOn(ctx, resource);
  return destroyed;
}

/** The resource changed in a way its leases and the waiting leases of its type care about. */
async function wakeLeasesOn(ctx: TxContext, resource: Resource): Promise<void> {
  const leases = await ctx.tx.lease.findMany({
    where: {
      OR: [
        { resourceId: resource.id, status: { in: ['ACQUIRED', 'ACTIVE'] } },
        ...(resource.allocatedForLeaseId ? [{ id: resource.allocatedForLeaseId, status: 'PENDING' as const }] : []),
      ],
    },
    select: { id: true },
  });
  for (const lease of leases) scheduleLeaseUpdate(ctx, lease.id);
  await wakeWaitingLeases(ctx, resource.type);
}

type SetupOutcome =
  | ActivationResult
  | { status: 'temporary'; message: string; retryAfterMs?: number }
  | { status: 'permanent'; message: string };

async function runSetup(deps: AllocatorDeps, resource: Resource, loaded: LoadedBlueprint): Promise<void> {
  let outcome: SetupOutcome;
  try {
    outcome = loaded.implementation.activateResource
      ? await loaded.implementation.activateResource(loaded.blueprint, resource)
      : { status: 'active' };
  } catch (error) {
    if (error instanceof TemporaryFailure)
      outcome = {
        status: 'temporary',
        message: error.message,
        ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
      };
    else if (error instanceof PermanentFailure) outcome = { status: 'permanent', message: error.message };
    else outcome = { status: 'permanent', message: error instanceof Error ? error.message : String(error) };
  }
  await inTransaction(deps, async (ctx) => {
    const current = await lockResource(ctx, resource.id);
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
        const failures = await ctx.tx.log.count({
          where: { resourceId: current.id, type: 'resource-activation-failed-temporarily' },
        });
        const delay = outcome.retryAfterMs ?? backoffDelayMs(failures, deps.options);
        scheduleResourceUpdate(ctx, current.id, new Date(ctx.now.getTime() + delay));
        return;
      }
      case 'permanent': {
        const broken = await transitionResource(ctx, current, 'BROKEN', {
          type: 'resource-broken',
          data: { message: outcome.message, reason: 'activation-failed' },
        });
        await destroyResource(ctx, broken);
        return;
      }
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
    await loaded.implementation.checkResource?.(loaded.blueprint, resource);
  } catch (error) {
    failure = {
      permanent: error instanceof PermanentFailure,
      message: error instanceof Error ? error.message : String(error),
      retryAfterMs: error instanceof TemporaryFailure ? error.retryAfterMs : undefined,
    };
  }
  if (!failure) return;
  const { permanent, message, retryAfterMs } = failure;
  await inTransaction(deps, async (ctx) => {
    const current = await lockResource(ctx, resource.id);
    // Released (or otherwise moved on) while the check ran: its own update deals with it.
    if (!current || current.status !== 'ACTIVE') return;
    if (permanent) {
      const broken = await transitionResource(ctx, current, 'BROKEN', {
        type: 'resource-broken',
        data: { message, reason: 'health-check-failed' },
      });
      await destroyResource(ctx, broken);
      return;
    }
    await logResource(ctx, current, { type: 'resource-check-failed-temporarily', data: { message } });
    if (retryAfterMs !== undefined) scheduleResourceUpdate(ctx, current.id, new Date(ctx.now.getTime() + retryAfterMs));
  });
}
