import pg from 'pg';
import { Prisma } from '../../src/generated/prisma/client.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { headsSql, HEADS_PER_DEMAND, OLDEST_PER_PASS } from '../../src/allocator/scheduler/read.js';
import { GENERIC_PLANS, SORTS_OFF, wantsIndexOrder } from '../../src/db/statements.js';
import { createTestDatabase, describeEachDatabase, describePostgres, type TestDatabase } from '../support/database.js';

// A pass's read of its queue's heads must not grow with the queue. What it reads is bounded by
// the statement; how many rows the database steps over to find them is the plan's. The table is
// never analyzed here, as a new deployment's is not until its first upkeep: the planner knows
// nothing of how many leases wait, and must still not scan them (the locking of the heads was
// once planned as a scan of every waiting lease joined to the few heads).

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
};

/** Rows of "Lease" the plan's scans produced or stepped over, over every loop. */
function leaseRowsVisited(node: PlanNode): number {
  const own =
    node['Relation Name'] === 'Lease'
      ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops']
      : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + leaseRowsVisited(child), 0);
}

describeEachDatabase("the heads' read of a long queue", (kind) => {
  let db: TestDatabase;
  const WAITING = 3_000;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const owner = await db.prisma.principal.create({ data: { name: 'ci', kind: 'USER' } });
    // Statistics of the empty table, as a first analyze leaves them.
    // Leases of the type that were served, then a long queue of one shape and a few other shapes
    // behind it, at two priorities; all of one owner, as a CI fleet's are.
    await db.prisma.$executeRaw`
      INSERT INTO "Lease" ("resourceType", attributes, "allowedBlueprintIds", "ownerId", status, "createdAt", "updatedAt")
      SELECT 'host', '{"label":"busy"}', '{}', ${owner.id}::int, 'ACTIVE', now(), now() FROM generate_series(1, 100)`;
    await db.prisma.$executeRaw`
      INSERT INTO "Lease" ("resourceType", attributes, "allowedBlueprintIds", "ownerId", priority, "createdAt", "updatedAt")
      SELECT 'host', CASE WHEN i % 100 = 0 THEN jsonb_build_object('label', 'l' || (i % 700)) ELSE '{"label":"busy"}' END,
             '{}', ${owner.id}::int, CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END, now(), now()
      FROM generate_series(1, ${WAITING}::int) AS i`;
  });
  afterAll(() => db.dispose());

  /** Rows of "Lease" the heads' read steps over, planned as a pass plans it: once, for any type and time. */
  async function visitedByHeadsRead(): Promise<number> {
    const sql = headsSql('host', Date.now(), 60_000);
    const [explained] = await db.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(GENERIC_PLANS);
      // As the allocator's drivers send it (db/raw-sql.ts, db/embedded-sql.ts).
      if (wantsIndexOrder(sql)) await tx.$executeRawUnsafe(SORTS_OFF);
      return tx.$queryRaw<{ 'QUERY PLAN': [{ Plan: PlanNode }] }[]>(Prisma.sql`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`);
    });
    return leaseRowsVisited(explained!['QUERY PLAN'][0].Plan);
  }
  // Each shape's heads at each priority, the oldest, and their lookups by id: a few hundred,
  // against the thousands a scan of the queue would step over.
  const shapes = 8;
  const bound = Math.min(4 * (shapes * 2 * HEADS_PER_DEMAND + OLDEST_PER_PASS), WAITING / 2);

  it('visits a bounded number of lease rows, whatever the statistics say', async () => {
    const rows = await db.prisma.$transaction((tx) =>
      tx.$queryRaw<{ id: number | null }[]>(headsSql('host', Date.now(), 60_000)),
    );
    // What it read: every shape's heads (busy at two priorities, seven others) and the oldest.
    expect(rows.filter((r) => r.id !== null).length).toBeGreaterThanOrEqual(OLDEST_PER_PASS);
    expect(await visitedByHeadsRead()).toBeLessThan(bound);
  });

  it("a backlog its passes refuse without a try: the shapes' heads, not the type's oldest again", async () => {
    const read = () =>
      db.prisma.$transaction((tx) => tx.$queryRaw<{ id: number | null }[]>(headsSql('host', Date.now(), 60_000)));
    const ids = (rows: { id: number | null }[]) => rows.flatMap((r) => (r.id === null ? [] : [r.id]));
    const everything = ids(await read());
    // The oldest waiting lease's patient wait was recorded in the queue's current epoch.
    await db.prisma.resourceTypeQueue.create({ data: { resourceType: 'host', capacityEpoch: 3 } });
    const [oldest] = await db.prisma.$queryRaw<{ id: number }[]>`
      SELECT id FROM "Lease" WHERE "resourceType" = 'host' AND status = 'PENDING' ORDER BY id LIMIT 1`;
    const settle = (blocker: object) => db.prisma.lease.update({ where: { id: oldest!.id }, data: { blocker } });
    await settle({ reason: 'no-capacity', epoch: 3 });
    const settled = ids(await read());
    // Every shape's heads are still read (the aged and the high-priority among them): only the
    // oldest that are no shape's heads are left out.
    expect(settled.length).toBeLessThan(OLDEST_PER_PASS);
    expect(settled.every((id) => everything.includes(id))).toBe(true);
    expect(new Set(settled).size).toBe(settled.length);
    // In an epoch the wait was not recorded in, the oldest are read again.
    await settle({ reason: 'no-capacity', epoch: 2 });
    expect(ids(await read()).sort()).toEqual([...everything].sort());
  });
});

/** The indexes the plan looks "Lease" rows up in by id alone. */
function indexesLookingUpLeasesById(node: PlanNode): string[] {
  const own =
    node['Relation Name'] === 'Lease' && /^\(id = [^)]*\)$/.test(node['Index Cond'] ?? '') ? [node['Index Name']!] : [];
  return [...own, ...(node.Plans ?? []).flatMap(indexesLookingUpLeasesById)];
}

describePostgres("the heads' read planned while the queue was short", () => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.dispose();
  });

  /**
   * The heads' read prepared as `name` on this connection, its plan kept from its first run as a
   * server's connection keeps it; the values to EXECUTE it with, as literals (EXECUTE takes no
   * bind parameters), typed by the statement.
   */
  async function prepareHeads(name: string) {
    const sql = headsSql('host', Date.now(), 60_000);
    await client.query('SET plan_cache_mode = force_generic_plan');
    await client.query(`PREPARE ${name} AS ${sql.text}`);
    return { sql, params: sql.values.map((value) => client.escapeLiteral(String(value))).join(', ') };
  }

  // A server's connection plans the read once, generically, early in its life (at its first pass,
  // when few leases wait), and keeps that plan. The heads it then locks are looked up by id: in the
  // index of waiting leases alone, keyed by type and shape with the id last, that lookup steps
  // over the entries of every lease waiting before the one it wants, once per head and pass.
  it('looks each head up by its primary key once the queue is long', async () => {
    const owner = await db.prisma.principal.create({ data: { name: 'ci', kind: 'USER' } });
    const waiting = (count: number) => db.prisma.$executeRaw`
      INSERT INTO "Lease" ("resourceType", attributes, "allowedBlueprintIds", "ownerId", "createdAt", "updatedAt")
      SELECT 'host', '{"platform":"later"}', '{}', ${owner.id}::int, now(), now() FROM generate_series(1, ${count}::int)`;
    await waiting(2);
    const { params } = await prepareHeads('heads');
    // Run once: the generic plan is made now, and kept.
    await client.query(`EXECUTE heads(${params})`);
    await waiting(1_000);
    await client.query('BEGIN');
    const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE heads(${params})`,
    );
    await client.query('ROLLBACK');
    const lookups = indexesLookingUpLeasesById(rows[0]!['QUERY PLAN'][0].Plan);
    expect(lookups.length).toBeGreaterThan(0);
    expect(new Set(lookups)).toEqual(new Set(['Lease_pkey']));
  });

  // Statistics say what the table held when they were taken: here, leases served and none
  // waiting. A plan made from them takes a type's waiting leases for a handful, and reads each
  // shape's first by sorting all of them, or by stepping through the whole queue in id order;
  // planned in index order (statements.ts, planInIndexOrder), as the drivers send the statement,
  // it steps over a bounded number of rows however many wait since.
  it('steps over a bounded number of lease rows when thousands wait since the statistics were taken', async () => {
    await client.query('DEALLOCATE ALL');
    await client.query('DELETE FROM "Lease"');
    const owner = await db.prisma.principal.create({ data: { name: 'fleet', kind: 'USER' } });
    await db.prisma.$executeRaw`
      INSERT INTO "Lease" ("resourceType", attributes, "allowedBlueprintIds", "ownerId", status, "createdAt", "updatedAt")
      SELECT t, '{"platform":"now"}', '{}', ${owner.id}::int, 'ACTIVE', now(), now()
      FROM generate_series(1, 3000), unnest(ARRAY['grant', 'other', 'host']) AS t`;
    await client.query('ANALYZE "Lease"');
    // A long queue of eight shapes at two priorities, most of it one shape.
    await db.prisma.$executeRaw`
      INSERT INTO "Lease" ("resourceType", attributes, "allowedBlueprintIds", "ownerId", priority, "createdAt", "updatedAt")
      SELECT 'host', CASE WHEN i % 100 = 0 THEN jsonb_build_object('label', 'l' || (i % 700)) ELSE '{"label":"busy"}' END,
             '{}', ${owner.id}::int, CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END, now(), now()
      FROM generate_series(1, 3000) AS i`;
    const { sql, params } = await prepareHeads('stale');
    expect(wantsIndexOrder(sql)).toBe(true);
    // As a connection of the server runs it: JIT off (db/database.ts), sorts priced out by the
    // driver around it, and the plan it makes first kept.
    const run = async (explain: string) => {
      await client.query('BEGIN');
      await client.query('SET LOCAL jit = off');
      await client.query(SORTS_OFF);
      const { rows } = await client.query(`${explain}EXECUTE stale(${params})`);
      await client.query('ROLLBACK');
      return rows as { 'QUERY PLAN': [{ Plan: PlanNode }] }[];
    };
    await run('');
    const [explained] = await run('EXPLAIN (ANALYZE, FORMAT JSON) ');
    // Each shape's heads at each priority, the oldest, and their lookups by id (as above).
    expect(leaseRowsVisited(explained!['QUERY PLAN'][0].Plan)).toBeLessThan(
      4 * (8 * 2 * HEADS_PER_DEMAND + OLDEST_PER_PASS),
    );
  });
});
