import { z } from 'zod';
import { defineImplementation, type BlueprintImplementation } from '../../src/blueprints/implementation.js';

type CanAllocateNow = BlueprintImplementation<Record<string, never>>['canAllocateNow'];

/**
 * A blueprint that builds one resource for each lease, opening at once, whenever
 * `canAllocateNow` says there is room: for tests that decide, lease by lease, when capacity frees.
 */
export function roomBlueprint(key: string, resourceType: string, canAllocateNow: CanAllocateNow) {
  return defineImplementation<Record<string, never>>({
    key,
    resourceType,
    configSchema: z.object({}).strict(),
    canEverAllocate: () => true,
    canAllocateNow,
    allocateResource: async () => ({ name: 'room', attributes: {}, slotLocks: [], activation: 'now' }),
    // Each lease on the resource built for it: the room is per lease.
    canAcquireLeaseOn: async (_b, resource, lease) => resource.allocatedForLeaseId === lease.id,
    acquireLease: () => ({ slotLocks: [] }),
    shouldAllocateSupplementalResource: () => false,
  });
}
