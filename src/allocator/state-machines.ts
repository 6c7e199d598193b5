import type { LeaseStatus, ResourceStatus } from '../generated/prisma/client.js';
import { IllegalTransition } from '../domain-errors.js';

// The transition tables of drydock-spec.md ("Statuses"). Every status write goes through
// assertLeaseTransition / assertResourceTransition, so a table edit is the only way to allow a move.

export const leaseTransitions: Readonly<Record<LeaseStatus, readonly LeaseStatus[]>> = {
  // PENDING → ACTIVE is "activate immediately".
  PENDING: ['ACQUIRED', 'ACTIVE', 'RELEASED', 'BROKEN'],
  // ACQUIRED → PENDING is "reacquire": the resource left PENDING/ACTIVE before the lease activated.
  ACQUIRED: ['ACTIVE', 'PENDING', 'RELEASED', 'BROKEN'],
  ACTIVE: ['RELEASED', 'BROKEN'],
  RELEASED: ['DESTROYED'],
  BROKEN: ['DESTROYED'],
  DESTROYED: [],
};

export const resourceTransitions: Readonly<Record<ResourceStatus, readonly ResourceStatus[]>> = {
  PENDING: ['ACTIVE', 'RELEASED', 'BROKEN'],
  ACTIVE: ['RELEASED', 'BROKEN'],
  RELEASED: ['DESTROYED'],
  BROKEN: ['DESTROYED'],
  DESTROYED: [],
};

/** Statuses in which a lease holds (or is trying to hold) capacity. */
export const liveLeaseStatuses: readonly LeaseStatus[] = ['PENDING', 'ACQUIRED', 'ACTIVE'];
/** Statuses in which a lease sits on a resource. */
export const leaseOnResourceStatuses: readonly LeaseStatus[] = ['ACQUIRED', 'ACTIVE'];
export const liveResourceStatuses: readonly ResourceStatus[] = ['PENDING', 'ACTIVE'];

export function canLeaseTransition(from: LeaseStatus, to: LeaseStatus): boolean {
  return leaseTransitions[from].includes(to);
}

export function canResourceTransition(from: ResourceStatus, to: ResourceStatus): boolean {
  return resourceTransitions[from].includes(to);
}

export function assertLeaseTransition(id: number, from: LeaseStatus, to: LeaseStatus): void {
  if (!canLeaseTransition(from, to)) throw new IllegalTransition('lease', id, from, to);
}

export function assertResourceTransition(id: number, from: ResourceStatus, to: ResourceStatus): void {
  if (!canResourceTransition(from, to)) throw new IllegalTransition('resource', id, from, to);
}
