import { fullActor, type Actor } from '../access/actor.js';
import type { Database } from '../db/database.js';
import type { PrincipalKind } from '../generated/prisma/client.js';

/** Whoever calls a service: resolved by the API from a token, by the CLI as the system. */
export type { Actor };

export const SYSTEM_PRINCIPAL_NAME = 'system';

/** Gets or creates a principal by name; its kind and admin flag are set only on creation. */
export async function ensurePrincipal(
  db: Database,
  input: { name: string; kind: PrincipalKind; isAdmin?: boolean },
): Promise<Actor> {
  const principal = await db.prisma.principal.upsert({
    where: { name: input.name },
    create: { name: input.name, kind: input.kind, isAdmin: input.isAdmin ?? false },
    update: {},
  });
  return fullActor(principal);
}

/** The SYSTEM principal (an admin): the command line acts as it, and it bypasses authorizations. */
export function systemActor(db: Database): Promise<Actor> {
  return ensurePrincipal(db, { name: SYSTEM_PRINCIPAL_NAME, kind: 'SYSTEM', isAdmin: true });
}
