import type { Actor } from './actor.js';

/**
 * Whether `actor` may ask for a priority above the default. The one place this is decided: the
 * access policy's `lease.raisePriority` action takes it over; until then, administrators only.
 */
export function mayRaisePriority(actor: Actor): boolean {
  return actor.isAdmin;
}
