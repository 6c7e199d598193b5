import { afterAll, beforeAll, expect, it } from 'vitest';
import { rawTransaction } from '../../src/db/raw-sql.js';
import { planGenerically, planInIndexOrder } from '../../src/db/statements.js';
import { readSnapshot } from '../../src/schema/snapshots.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';

// A statement marked planGenerically runs its generic plan, planned once per connection, where
// PostgreSQL would otherwise plan it again on every run while a plan for the values at hand looks
// cheaper. Unmarked statements keep PostgreSQL's own choice.

describeEachDatabase('statements marked to run their generic plan', (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    // One connection: every transaction below runs where the plans are then counted.
    db = await createTestDatabase(kind, { poolSize: 1 });
  });
  afterAll(() => db.dispose());

  const plans = (marker: string) =>
    rawTransaction(
      db,
      10_000,
      (tx) =>
        tx.$queryRaw<{ generic: number; custom: number }[]>`
        SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements
        WHERE statement LIKE ${`%/* ${marker} */%`} AND statement NOT LIKE '%pg_prepared_statements%'`,
    );
  // Empty lists against one item: the plan for the values at hand is the cheaper estimate.
  const statement = (marker: string, i: number) =>
    Prisma.sql(
      ['SELECT count(*)::int AS n FROM unnest(', '::int[]) AS u(v) WHERE v > ', ` /* ${marker} */`],
      i % 2 === 0 ? [] : [i],
      i,
    );
  const runs = 10;

  it('plans a marked statement once, whether it commits the transaction or not', async () => {
    for (let i = 0; i < runs; i++) {
      const rows = await rawTransaction(db, 10_000, (tx) => {
        const marked = planGenerically(statement('marked', i));
        return tx.$queryRawAndCommit
          ? tx.$queryRawAndCommit<{ n: number }[]>(marked)
          : tx.$queryRaw<{ n: number }[]>(marked);
      });
      expect(rows).toEqual([{ n: 0 }]);
    }
    expect(await plans('marked')).toEqual([{ generic: runs, custom: 0 }]);
  });

  it('leaves an unmarked statement to the database, which plans it for its values at first', async () => {
    for (let i = 0; i < runs; i++) await rawTransaction(db, 10_000, (tx) => tx.$queryRaw(statement('unmarked', i)));
    const [counted] = await plans('unmarked');
    expect(counted!.custom).toBeGreaterThanOrEqual(5);
    expect(counted!.generic + counted!.custom).toBe(runs);
  });

  it('plans a statement marked for index order with sorts priced out, and only that statement', async () => {
    const setting = (marker: string) => Prisma.sql([`SELECT current_setting('enable_sort') AS sort /* ${marker} */`]);
    for (let i = 0; i < 3; i++) {
      const seen = await rawTransaction(db, 10_000, async (tx) => {
        const before = await tx.$queryRaw<{ sort: string }[]>(setting('before'));
        const marked = await tx.$queryRaw<{ sort: string }[]>(planInIndexOrder(setting('ordered')));
        const after = await tx.$queryRaw<{ sort: string }[]>(setting('after'));
        return [before, marked, after].map((rows) => rows[0]!.sort);
      });
      expect(seen).toEqual(['on', 'off', 'on']);
    }
    // The next transaction on the connection plans as before.
    expect(await rawTransaction(db, 10_000, (tx) => tx.$queryRaw(setting('next')))).toEqual([{ sort: 'on' }]);
  });

  it('reports the error of a marked statement that fails, not of what is sent around it', async () => {
    const failing = planInIndexOrder(Prisma.sql`SELECT 1 / (SELECT count(*)::int - count(*)::int FROM "Lease") AS x`);
    await expect(rawTransaction(db, 10_000, (tx) => tx.$queryRaw(failing))).rejects.toThrow(/division by zero/);
  });

  it("keeps the generic plan of a subscription's change snapshot, a statement of its own read on every event", async () => {
    const kinds = ['lease', 'resource'] as const;
    for (let i = 0; i < 20; i++) await readSnapshot(db, { kind: kinds[i % 2]!, id: i });
    const counted = await rawTransaction(
      db,
      10_000,
      (tx) =>
        tx.$queryRaw<{ generic: number; custom: number }[]>`
        SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements
        WHERE statement LIKE '%AS cursor%' AND statement NOT LIKE '%pg_prepared_statements%'`,
    );
    // PostgreSQL plans the first five runs for their values, then keeps the generic plan if it is
    // no dearer: ten runs of each.
    expect(counted).toEqual([
      { generic: 5, custom: 5 },
      { generic: 5, custom: 5 },
    ]);
  });
});
