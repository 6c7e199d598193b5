import type { TokenScope } from '../generated/prisma/enums.js';

export type Scope = TokenScope;

/** Every scope, weakest first: READ sees, LEASE also leases, ADMIN does everything its principal may. */
export const ALL_SCOPES: readonly Scope[] = ['READ', 'LEASE', 'ADMIN'];

/** New tokens get these unless their creator chooses. */
export const DEFAULT_SCOPES: readonly Scope[] = ['READ', 'LEASE'];

// Each scope grants the ones before it: a token that may lease may see its leases.
const implied: Record<Scope, readonly Scope[]> = {
  READ: ['READ'],
  LEASE: ['READ', 'LEASE'],
  ADMIN: ['READ', 'LEASE', 'ADMIN'],
};

export function grants(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.some((scope) => implied[scope].includes(needed));
}

/** Whether a token with `held` may hand out a token with `wanted` (never more than it has). */
export function covers(held: readonly Scope[], wanted: readonly Scope[]): boolean {
  return wanted.every((scope) => grants(held, scope));
}
