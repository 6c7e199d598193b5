import type { Blueprint } from '../generated/prisma/client.js';
import type { BlueprintRegistry } from '../blueprints/registry.js';
import { scheduleBlueprintMaintenance } from './jobs.js';
import { loadBlueprint } from './blueprints.js';
import type { AllocatorDeps, TxContext } from './context.js';
import { inTransaction } from './transaction.js';
import { writeLog } from './logs.js';
import { maintenanceRuntime } from './runtime.js';

/**
 * One round of a blueprint's periodic work (leak sweep, warm pool), then the next one is booked.
 * It is a queue job keyed by blueprint, so exactly one process runs it at a time; a disabled or
 * deleted blueprint simply stops booking rounds until it is enabled again (which books one).
 */
export async function maintainBlueprint(deps: AllocatorDeps, blueprintId: number): Promise<void> {
  const loaded = await loadBlueprint(deps.db.prisma, deps.registry, blueprintId);
  const maintenance = loaded?.implementation.maintenance;
  if (!loaded || !maintenance || loaded.blueprint.disabled) return;
  let failure: string | null = null;
  try {
    await maintenance.run(loaded.blueprint, maintenanceRuntime(deps, loaded.blueprint));
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }
  await inTransaction(deps, async (ctx) => {
    if (failure !== null)
      await writeLog(ctx, { type: 'blueprint-maintenance-failed', data: { message: failure }, blueprintId });
    const next = new Date(ctx.now.getTime() + maintenance.intervalMs(loaded.blueprint));
    scheduleBlueprintMaintenance(ctx, blueprintId, next);
  });
}

/** Books the first round for a blueprint whose implementation has periodic work (created, enabled, edited). */
export function bookMaintenance(ctx: TxContext, registry: BlueprintRegistry, blueprint: Blueprint): void {
  if (!blueprint.disabled && registry.get(blueprint.implementation)?.maintenance)
    scheduleBlueprintMaintenance(ctx, blueprint.id);
}
