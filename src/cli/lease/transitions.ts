import type { CliLeaseFragment, LeaseStatus } from '../../generated/graphql/graphql.js';

type Stamps = Pick<CliLeaseFragment, 'status' | 'acquiredAt' | 'activatedAt' | 'releasedAt'>;

/**
 * The statuses a lease went through, oldest first, as far as its timestamps tell: PENDING,
 * ACQUIRED and ACTIVE when it got there, then RELEASED or BROKEN, then DESTROYED.
 */
function pathOf(lease: Stamps): LeaseStatus[] {
  const path: LeaseStatus[] = ['PENDING'];
  if (lease.acquiredAt) path.push('ACQUIRED');
  if (lease.activatedAt) path.push('ACTIVE');
  const ended = lease.status === 'DESTROYED' ? (lease.releasedAt ? 'RELEASED' : 'BROKEN') : lease.status;
  if (ended === 'RELEASED' || ended === 'BROKEN') path.push(ended);
  if (lease.status === 'DESTROYED') path.push('DESTROYED');
  return path;
}

/**
 * The transitions to show when a watched lease changes from `previous` (undefined: first seen)
 * to what it is now. A change event carries the lease as it is when it is read, so two events may
 * show the same status (printed once) and one may skip statuses (each is printed all the same).
 */
export function transitionsSince(previous: LeaseStatus | undefined, lease: Stamps): LeaseStatus[] {
  if (previous === lease.status) return [];
  const path = pathOf(lease);
  if (previous === undefined) return path.slice(0, path.indexOf(lease.status) + 1);
  const from = path.indexOf(previous);
  const to = path.indexOf(lease.status);
  // Not before it on the path (a lease that went back from ACTIVE to ACQUIRED): where it is now.
  return from >= 0 && from < to ? path.slice(from + 1, to + 1) : [lease.status];
}
