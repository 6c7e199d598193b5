import DataLoader from 'dataloader';
import type { Database } from '../db/database.js';
import { rawQueries } from '../db/raw-sql.js';
import { Prisma } from '../generated/prisma/client.js';

export type ChangedObject = { kind: 'lease' | 'resource'; id: number };

/** An object's row as to_jsonb gives it (null when it is gone) and the id of its newest log entry. */
export type RawSnapshot = { row: Record<string, unknown> | null; cursor: bigint };

/**
 * One statement for all of a kind's objects: each row and its newest log id in one snapshot. A row
 * per requested id, in the order asked (an id asked twice is answered twice).
 *
 * The ids travel as a JSON array, not an int[]: PostgreSQL estimates the rows of unnest() from the
 * array it is given, so a plan made for the values at hand always looked cheaper than the generic
 * one and the statement was planned again on every run, which cost it more than running it. A
 * JSON array's elements are estimated the same either way, and the generic plan is kept.
 */
const snapshotsSql = (kind: ChangedObject['kind'], ids: number[]) =>
  kind === 'lease'
    ? Prisma.sql`SELECT (SELECT max(g.id) FROM "Log" g WHERE g."leaseId" = o.id::int) AS cursor,
        (SELECT to_jsonb(l) FROM "Lease" l WHERE l.id = o.id::int) AS row
      FROM jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) WITH ORDINALITY AS o(id, n) ORDER BY o.n`
    : Prisma.sql`SELECT (SELECT max(g.id) FROM "Log" g WHERE g."resourceId" = o.id::int) AS cursor,
        (SELECT to_jsonb(r) FROM "Resource" r WHERE r.id = o.id::int) AS row
      FROM jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) WITH ORDINALITY AS o(id, n) ORDER BY o.n`;

async function readSnapshots(db: Database, objects: readonly ChangedObject[]): Promise<RawSnapshot[]> {
  const answers = new Array<RawSnapshot>(objects.length);
  for (const kind of ['lease', 'resource'] as const) {
    const at = objects.flatMap((object, i) => (object.kind === kind ? [i] : []));
    if (at.length === 0) continue;
    const rows = await (
      await rawQueries(db)
    ).$queryRaw<{ row: Record<string, unknown> | null; cursor: string | bigint | null }[]>(
      snapshotsSql(
        kind,
        at.map((i) => objects[i]!.id),
      ),
    );
    at.forEach((i, n) => (answers[i] = { row: rows[n]?.row ?? null, cursor: BigInt(rows[n]?.cursor ?? 0n) }));
  }
  return answers;
}

/**
 * A pass's commit wakes a subscription with one event per lease it granted, and each event would
 * read its lease in a statement of its own. Reads asked for in the same tick, by any subscription
 * of this process, go out together instead (DataLoader, uncached: every event reads again, so a
 * read is never older than the event that asked for it). One loader per database, kept as long as
 * the database object is.
 */
const loaders = new WeakMap<Database, DataLoader<ChangedObject, RawSnapshot, ChangedObject>>();

export function readSnapshot(db: Database, object: ChangedObject): Promise<RawSnapshot> {
  let loader = loaders.get(db);
  if (!loader) {
    loader = new DataLoader((objects) => readSnapshots(db, objects), { cache: false, maxBatchSize: 1_000 });
    loaders.set(db, loader);
  }
  return loader.load(object);
}
