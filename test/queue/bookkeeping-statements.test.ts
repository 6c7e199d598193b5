import { afterAll, beforeAll, expect, it } from 'vitest';
import { bookkeeping, closeBookkeeping, openBookkeeping } from '../../src/queue/bookkeeping.js';
import { claimJobs } from '../../src/queue/store.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';

// The job queue's own statements (claims, completions) run on every job. Each is prepared once
// on its connection and, on PostgreSQL, always runs its generic plan: otherwise PostgreSQL plans
// the claim again on every run. On PGlite they go to its one connection as prepared statements,
// not through the Prisma client.

describeEachDatabase("the queue's own statements", (kind) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    openBookkeeping(db, (error) => {
      throw error;
    });
  });
  afterAll(async () => {
    await closeBookkeeping(db);
    await db.dispose();
  });

  it('prepares the claim once and, on PostgreSQL, never plans it again', async () => {
    const runs = 12;
    // One after another: the pool hands back the connection it was last given.
    for (let i = 0; i < runs; i++) expect(await claimJobs(db, 'test-token', 4, 60_000, new Date())).toEqual([]);
    const rows = (await bookkeeping(db).query(
      `SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements
       WHERE statement LIKE 'UPDATE "Job" SET "lockedBy" = $1%'`,
      [],
    )) as { generic: number; custom: number }[];
    expect(rows).toHaveLength(1);
    if (kind === 'postgresql') expect(rows[0]).toEqual({ generic: runs, custom: 0 });
    else expect(rows[0]!.generic + rows[0]!.custom).toBe(runs);
  });
});
