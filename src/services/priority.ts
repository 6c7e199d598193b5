import { may } from '../access/policy.js';
import type { DomainError } from '../domain-errors.js';
import type { Actor } from './actor.js';

/**
 * Why `actor` may not ask for a priority above the default (null: it may): the access policy's
 * `lease.raisePriority` action, asked in this one place.
 */
export function mayRaisePriority(actor: Actor): DomainError | null {
  return may(actor, { kind: 'lease.raisePriority' });
}
