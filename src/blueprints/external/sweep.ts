import type { ResourceStatus } from '../../generated/prisma/client.js';
import type { BlueprintOf, MaintenanceRuntime } from '../implementation.js';
import type { ExternalConfig } from './config.js';
import { connect } from './connect.js';
import { requestIdPrefix, resourceIdOf } from './protocol.js';

/** Rows that may still own a box: teardown, not the sweep, deletes the boxes of these. */
const owning: readonly ResourceStatus[] = ['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN'];

/**
 * The leak sweep: destroys the boxes this blueprint asked for that no live resource row owns (a
 * teardown that gave up, an allocate that landed after its resource was destroyed).
 *
 * The provisioner is listed before the rows are read. A box is only created by an allocate for a
 * row that had already committed, so any box in the list whose row is live shows up as live: an
 * allocate in flight can never be mistaken for a leak. Boxes younger than the grace period are
 * left alone as well, against a row of another installation that reuses our namespace by mistake.
 */
export async function sweepLeaks(blueprint: BlueprintOf<ExternalConfig>, runtime: MaintenanceRuntime): Promise<void> {
  const { config } = blueprint;
  const client = connect(config, runtime.signal);
  const prefix = requestIdPrefix(config.namespace, blueprint.id);
  const boxes = await client.list({ prefix });
  if (boxes.length === 0) return;
  const live = new Set((await runtime.resources(owning)).map((r) => r.id));
  const failures: string[] = [];
  for (const box of boxes) {
    const resourceId = resourceIdOf(box.requestId, prefix);
    if (resourceId === null || live.has(resourceId)) continue;
    if (box.ageMs !== undefined && box.ageMs < config.leakGraceMs) continue;
    try {
      await client.delete(box.id);
      await runtime.log(client.redact(`destroyed leaked provisioner box ${box.id}`), {
        providerId: box.id,
        requestId: box.requestId,
        resourceId,
      });
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error));
    }
  }
  // One box that cannot be deleted must not spare the others; the sweep still reports failure.
  if (failures.length > 0) throw new Error(`leak sweep: ${failures.join('; ')}`);
}
