import type { Lease } from '../generated/prisma/client.js';
import { builder } from './builder.js';
import { hideOthers } from './hidden-leases.js';

// "Why am I waiting": the blocker the allocator recorded on a pending lease, in words, with the
// objects it names and the lease's place in its type's queue.

interface Blocker {
  reason: string;
  [detail: string]: unknown;
}

/**
 * A detail of the blocker, or undefined. Someone else's lease in `queue` is anonymous: its blocker
 * comes with its reason alone (the quota number, the leases and resources it waits for could help
 * tell whose it is), so every message also reads without its details.
 */
const id = (b: Blocker, key: string) => (typeof b[key] === 'number' ? b[key] : undefined);

const messages: Record<string, (blocker: Blocker) => string> = {
  'waiting-for-resource-activation': (b) =>
    id(b, 'resourceId') === undefined
      ? 'waiting for a resource to finish setting up'
      : `waiting for resource ${id(b, 'resourceId')} to finish setting up`,
  'waiting-for-reclaim': (b) =>
    id(b, 'resourceId') === undefined
      ? 'waiting for an idle resource to be reclaimed'
      : `waiting for idle resource ${id(b, 'resourceId')} to be reclaimed`,
  'no-capacity': () => 'waiting for resources: every matching resource is busy and no blueprint can build another now',
  draining: (b) =>
    Array.isArray(b['resourceIds'])
      ? `waiting for resources: the only matching capacity is draining (resources ${(b['resourceIds'] as number[]).join(', ')})`
      : 'waiting for resources: the only matching capacity is draining',
  'slot-lock': () => 'waiting for a slot held by another lease',
  'slot-lock-failure': () => 'lost a race for a slot lock; retrying',
  'resource-not-open': () => 'the chosen resource is not open yet; retrying',
  'queued-behind': (b) =>
    `queued behind ${id(b, 'leaseId') === undefined ? 'another lease' : `lease ${id(b, 'leaseId')}`}, which asks for the same and is served first`,
  quota: (b) =>
    id(b, 'quota') === undefined
      ? 'its owner is at its quota of live leases of this type'
      : id(b, 'parts') === undefined
        ? `at its quota of ${id(b, 'quota')} live leases of this type`
        : `its owner holds ${id(b, 'live')} of its quota of ${id(b, 'quota')} live leases of ${String(b['resourceType'])}, too few for the ${id(b, 'parts')} its gang asks for`,
  'gang-over-quota': (b) =>
    id(b, 'quota') === undefined
      ? "its gang asks for more leases of a type than its owner's quota: it waits until the quota is raised"
      : `its gang asks for ${id(b, 'parts')} leases of ${String(b['resourceType'])}, more than its owner's quota of ${id(b, 'quota')}: it waits until the quota is raised`,
  reserved: (b) =>
    `capacity is kept for ${id(b, 'leaseId') === undefined ? 'another lease' : `lease ${id(b, 'leaseId')}`}, which has waited longer at a higher band`,
  'gang-waiting': (b) =>
    id(b, 'leaseId') === undefined
      ? 'its gang waits until every part can be served'
      : `its gang waits until every part can be served (part ${id(b, 'leaseId')} cannot yet)`,
  'gang-busy': () => 'a part of its gang is busy; the gang is looked at again shortly',
};

export function blockerMessage(blocker: Blocker): string {
  return messages[blocker.reason]?.(blocker) ?? blocker.reason.replace(/-/g, ' ');
}

export const LeaseBlockerRef = builder.objectRef<{ lease: Lease; blocker: Blocker }>('LeaseBlocker').implement({
  description: 'What a pending lease is waiting for, as the allocator last saw it.',
  fields: (t) => ({
    reason: t.string({
      description: 'e.g. no-capacity, waiting-for-resource-activation, slot-lock.',
      resolve: (p) => p.blocker.reason,
    }),
    message: t.string({ resolve: async (p, _args, ctx) => blockerMessage(await hideOthers(p.blocker, ctx.access)) }),
    details: t.field({
      type: 'JSON',
      // The capacity epoch a patient wait records, and when time alone ends it, are the
      // scheduler's bookkeeping, not details.
      resolve: ({ blocker: { reason: _reason, epoch: _epoch, until: _until, ...details } }, _args, ctx) =>
        hideOthers(details, ctx.access),
    }),
    resource: t.prismaField({
      type: 'Resource',
      nullable: true,
      description: 'The resource it waits for, when it waits for one.',
      resolve: (query, { blocker }, _args, ctx) =>
        typeof blocker['resourceId'] === 'number'
          ? ctx.db.prisma.resource.findUnique({ ...query, where: { id: blocker['resourceId'] } })
          : null,
    }),
    queuePosition: t.int({
      nullable: true,
      description:
        "The lease's place in its type's `queue` (1: considered first by the next pass); null once it is not waiting.",
      resolve: ({ lease }, _args, ctx) => ctx.services.scheduling.position(lease),
    }),
  }),
});
