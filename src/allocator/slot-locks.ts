import { Prisma } from '../generated/prisma/client.js';
import { readOnly } from '../db/statements.js';
import type { Tx } from './context.js';
import type { SlotLockHolder } from './logs.js';

export type SlotLockOwner = { leaseId: number } | { resourceId: number };

export type SlotLockResult = { ok: true } | { ok: false; holders: SlotLockHolder[] };

/**
 * Takes every key for `owner` in one statement of the caller's transaction, all or none. A key
 * that is already held makes the statement skip it instead of raising (a raised unique violation
 * would abort the caller's whole transaction on PostgreSQL); if any was skipped, the keys this
 * call did insert are deleted again and the holders are reported. Keys are sorted so that two
 * owners asking for overlapping sets wait on each other in the same order, never in a cycle.
 */
export async function acquireSlotLocks(tx: Tx, owner: SlotLockOwner, keys: readonly string[]): Promise<SlotLockResult> {
  const wanted = [...new Set(keys)].sort();
  if (wanted.length === 0) return { ok: true };
  const leaseId = 'leaseId' in owner ? owner.leaseId : null;
  const resourceId = 'resourceId' in owner ? owner.resourceId : null;
  const inserted = await tx.$queryRaw<{ key: string }[]>`
    INSERT INTO "SlotLock" (key, "ownerLeaseId", "ownerResourceId")
    SELECT k, ${leaseId}::int, ${resourceId}::int FROM unnest(${wanted}::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n
    ON CONFLICT (key) DO NOTHING
    RETURNING key`;
  if (inserted.length === wanted.length) return { ok: true };
  const mine = inserted.map((row) => row.key);
  if (mine.length > 0) await tx.$executeRaw`DELETE FROM "SlotLock" WHERE key = ANY(${mine}::text[])`;
  const missing = wanted.filter((key) => !mine.includes(key));
  return { ok: false, holders: await slotLockHolders(tx, missing) };
}

export async function slotLockHolders(tx: Tx, keys: readonly string[]): Promise<SlotLockHolder[]> {
  const byKey = await heldSlotLocks(tx, keys);
  const held = [...byKey.values()].flat().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // A holder that committed its release between our insert and this read still blocked us.
  for (const key of keys) if (!byKey.has(key)) held.push({ key, leaseId: null, resourceId: null });
  return held;
}

/** Who holds which of `keys` right now, by key (a cheap pre-check; only the insert decides). */
export async function heldSlotLocks(tx: Tx, keys: readonly string[]): Promise<Map<string, SlotLockHolder[]>> {
  const held = new Map<string, SlotLockHolder[]>();
  if (keys.length === 0) return held;
  const rows = await tx.$queryRaw<{ key: string; leaseId: number | null; resourceId: number | null }[]>(
    readOnly(Prisma.sql`
      SELECT key, "ownerLeaseId" AS "leaseId", "ownerResourceId" AS "resourceId"
      FROM "SlotLock" WHERE key = ANY(${[...new Set(keys)]}::text[])`),
  );
  for (const row of rows) held.set(row.key, [{ key: row.key, leaseId: row.leaseId, resourceId: row.resourceId }]);
  return held;
}

/** Which of `keys` are held right now (a cheap pre-check; only the insert decides). */
export async function heldKeys(tx: Tx, keys: readonly string[]): Promise<Set<string>> {
  return new Set((await heldSlotLocks(tx, keys)).keys());
}

export async function releaseSlotLocks(tx: Tx, owner: SlotLockOwner): Promise<number> {
  return 'leaseId' in owner
    ? tx.$executeRaw`DELETE FROM "SlotLock" WHERE "ownerLeaseId" = ${owner.leaseId}`
    : tx.$executeRaw`DELETE FROM "SlotLock" WHERE "ownerResourceId" = ${owner.resourceId}`;
}
