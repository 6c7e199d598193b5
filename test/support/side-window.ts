import { z } from 'zod';
import type { Lease, Resource } from '../../src/generated/prisma/client.js';
import { defineImplementation } from '../../src/blueprints/implementation.js';

export interface SideWindowControl {
  open: boolean;
  /** Tries refused while the window was shut. */
  refusals: number;
  /** What building the side resource does besides opening the window (a mark committed meanwhile). */
  onSide?: (() => Promise<void>) | null;
}

/**
 * Two blueprints of `resourceType`: a window (one resource, shared), shut until a side resource
 * is built; and the side resources (leases asking for `side`, which the window never serves, as
 * the side never serves the others), which can always be built. A grant of another shape, which
 * the window's leases could never use, opens capacity they were refused a moment before.
 * Blueprint keys: `resourceType` and `${resourceType}-side`.
 */
export function sideWindowBlueprints(control: SideWindowControl, resourceType: string) {
  const side = (attributes: unknown) => Boolean((attributes as { side?: boolean } | null)?.side);
  const common = {
    resourceType,
    configSchema: z.object({}).strict(),
    canAcquireLeaseOn: async (_b: unknown, resource: Resource, lease: Lease) =>
      resource.status === 'ACTIVE' && side(resource.attributes) === side(lease.attributes),
    acquireLease: () => ({ slotLocks: [] }),
    shouldAllocateSupplementalResource: () => false,
  };
  return [
    defineImplementation<Record<string, never>>({
      ...common,
      key: resourceType,
      canEverAllocate: (_b, lease) => !side(lease.attributes),
      async canAllocateNow(blueprint, _lease, queries) {
        if (!control.open) {
          control.refusals++;
          return false;
        }
        return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length === 0;
      },
      allocateResource: async () => ({ name: 'window', attributes: {}, slotLocks: [], activation: 'now' }),
    }),
    defineImplementation<Record<string, never>>({
      ...common,
      key: `${resourceType}-side`,
      canEverAllocate: (_b, lease) => side(lease.attributes),
      async canAllocateNow(blueprint, _lease, queries) {
        return (await queries.resources(blueprint.id, ['PENDING', 'ACTIVE'])).length === 0;
      },
      allocateResource: async () => {
        control.open = true;
        await control.onSide?.();
        return { name: 'side', attributes: { side: true }, slotLocks: [], activation: 'now' };
      },
    }),
  ];
}
