import type { Blocker } from '../waiting.js';

/**
 * The blocker of `count` more leases of a type for an owner holding `live` of them (with what the
 * pass granted it so far) under `quota` (null: none); null when there is room for them. The pass
 * holds owners to it before it tries anything, and the dry run tells a requester the same.
 */
export function quotaBlocker(quota: number | null, live: number, count: number): Blocker | null {
  return quota !== null && live + count > quota ? { reason: 'quota', quota, live } : null;
}
