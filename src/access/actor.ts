import type { Scope } from './scopes.js';
import { grants } from './scopes.js';

/**
 * Whoever acts: a principal, through a token with some scopes. `principalIsAdmin` is the
 * principal's flag; what the actor may do as an admin also needs the token's ADMIN scope
 * (see isAdmin), so an administrator can hand a script a token that only reads.
 */
export interface Actor {
  principalId: number;
  name: string;
  principalIsAdmin: boolean;
  scopes: readonly Scope[];
  /** The API token it acts through (none for the local admin and the service's own actors). */
  token?: { id: number; expiresAt: Date | null };
}

/** Admin rights: an admin principal acting through an ADMIN-scoped token. */
export function isAdmin(actor: Actor): boolean {
  return actor.principalIsAdmin && grants(actor.scopes, 'ADMIN');
}

export function hasScope(actor: Actor, scope: Scope): boolean {
  return grants(actor.scopes, scope);
}

/** An actor for a principal row acting with every right it has (the CLI, the local admin). */
export function fullActor(principal: { id: number; name: string; isAdmin: boolean }): Actor {
  return {
    principalId: principal.id,
    name: principal.name,
    principalIsAdmin: principal.isAdmin,
    scopes: principal.isAdmin ? ['ADMIN'] : ['READ', 'LEASE'],
  };
}

/**
 * Two actors with the same key see exactly the same data through every field, so one execution
 * may serve both (subscription cohorts). It is the principal and its rights, not just the
 * policy's row filters: some fields answer differently to their own principal (Principal.scopes).
 */
export function visibilityKey(actor: Actor): string {
  return `${actor.principalId}:${isAdmin(actor) ? 'admin' : [...actor.scopes].sort().join(',')}`;
}
