import type { Resource } from '../generated/prisma/client.js';
import { scheduleResourceUpdate } from './jobs.js';
import type { LoadedBlueprint } from './blueprints.js';
import type { TxContext } from './context.js';

/**
 * The next health check of an ACTIVE resource is simply its next update, delayed: no sweep over
 * all resources, and an update that runs earlier for another reason checks (and re-arms) anyway.
 */
export function scheduleHealthCheck(ctx: TxContext, resource: Resource, loaded: LoadedBlueprint | null): void {
  if (!loaded?.implementation.checkResource) return;
  scheduleResourceUpdate(ctx, resource.id, new Date(ctx.now.getTime() + ctx.deps.options.healthCheckIntervalMs));
}
