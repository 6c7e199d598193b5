import type { Tx } from './context.js';

// A blueprint that leases from other blueprints (a working copy's host) acts as its own
// principal, so that operators authorize it like anyone else (drydock-spec.md "working-copy").

export const blueprintPrincipalName = (blueprintId: number) => `blueprint:${blueprintId}`;

/**
 * The blueprint's principal, created on first use. One statement that cannot fail on a race:
 * a unique violation inside the caller's transaction would abort all of it.
 */
export async function blueprintPrincipalId(tx: Tx, blueprintId: number): Promise<number> {
  const name = blueprintPrincipalName(blueprintId);
  const [row] = await tx.$queryRaw<{ id: number }[]>`
    WITH inserted AS (
      INSERT INTO "Principal" (name, kind) VALUES (${name}, 'BLUEPRINT') ON CONFLICT (name) DO NOTHING RETURNING id)
    SELECT id FROM inserted UNION ALL SELECT id FROM "Principal" WHERE name = ${name}`;
  if (!row) throw new Error(`could not create the principal of blueprint ${blueprintId}`);
  return row.id;
}
