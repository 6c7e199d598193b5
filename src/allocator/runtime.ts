import type { Lease, Resource } from '../generated/prisma/client.js';
import type { BlueprintRuntime, MaintenanceRuntime, OwnedLeases } from '../blueprints/implementation.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { noRuntimeTools, type RuntimeTools } from './runtime-tools.js';
import { inTransaction } from './transaction.js';
import { writeLog } from './logs.js';
import { ownedLeases } from './owned-leases.js';

const noOwnedLeases: OwnedLeases = {
  list: () => Promise.resolve([]),
  request: () => Promise.reject(new Error('only a resource hook may request leases for itself')),
  release: () => Promise.reject(new Error('only a resource hook may release leases it holds')),
  whyBroken: () => Promise.resolve(null),
};

/** For work on no object in particular (resolving a lease's command transport): logs nowhere. */
export function bareRuntime(tools: RuntimeTools): BlueprintRuntime {
  const { transports, commands, signal } = tools;
  return { log: () => Promise.resolve(), leases: noOwnedLeases, commands, transports, signal };
}

function tools(deps: AllocatorDeps): RuntimeTools {
  return deps.tools ?? noRuntimeTools();
}

/** A progress entry in one transaction of its own, published to the object's subscribers. */
function progressLog(deps: AllocatorDeps, write: (ctx: TxContext, data: { message: string }) => Promise<unknown>) {
  return (message: string, data: Record<string, unknown> = {}) =>
    inTransaction(deps, async (ctx) => {
      await write(ctx, { ...data, message });
    });
}

/** The runtime of a resource's setup, teardown and health check: logs go to the resource. */
export function resourceRuntime(deps: AllocatorDeps, resource: Resource): BlueprintRuntime {
  const { id: resourceId, blueprintId, status } = resource;
  return {
    ...tools(deps),
    log: progressLog(deps, (ctx, data) =>
      writeLog(ctx, { type: 'resource-setup-progress', data, resourceId, blueprintId }, { resource: status }),
    ),
    leases: ownedLeases(deps, resource),
  };
}

/** The runtime of a lease's setup: logs go to the lease. */
export function leaseRuntime(deps: AllocatorDeps, lease: Lease): BlueprintRuntime {
  const { id: leaseId, resourceId, status } = lease;
  return {
    ...tools(deps),
    log: progressLog(deps, (ctx, data) =>
      writeLog(ctx, { type: 'lease-setup-progress', data, leaseId, resourceId }, { lease: status }),
    ),
    leases: noOwnedLeases,
  };
}

export function maintenanceRuntime(deps: AllocatorDeps, blueprint: { id: number }): MaintenanceRuntime {
  return {
    resources: (statuses) =>
      deps.db.prisma.resource.findMany({
        where: { blueprintId: blueprint.id, status: { in: [...statuses] } },
        orderBy: { id: 'asc' },
      }),
    log: progressLog(deps, (ctx, data) =>
      writeLog(ctx, { type: 'blueprint-maintenance', data, blueprintId: blueprint.id }),
    ),
    signal: tools(deps).signal,
  };
}
