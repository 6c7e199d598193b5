import type { Lease } from '../generated/prisma/client.js';

/** What sets one unsaved lease apart from another: who asks, for what, from which blueprints. */
export type UnsavedLeaseFields = Pick<
  Lease,
  'id' | 'resourceType' | 'attributes' | 'ownerId' | 'authorizingPrincipalId' | 'allowedBlueprintIds'
>;

/**
 * A PENDING lease that lives only in memory, so that the allocator's questions can be asked as a
 * real request would ask them (a warm pool's build, a dry run of a request) without a row: nothing
 * granted, nothing waited for, no log.
 */
export function unsavedLease(fields: UnsavedLeaseFields, now: Date): Lease {
  return {
    ...fields,
    status: 'PENDING',
    resourceId: null,
    ownerResourceId: null,
    until: null,
    blocker: null,
    attempts: 0,
    priority: 0,
    waitUntil: null,
    gangId: null,
    fence: null,
    heartbeatSeconds: null,
    lastSeenAt: null,
    statusReason: null,
    createdAt: now,
    updatedAt: now,
    acquiredAt: null,
    activatedAt: null,
    releasedAt: null,
    destroyedAt: null,
  };
}
