import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bookkeeping, closeBookkeeping, openBookkeeping } from '../../src/queue/bookkeeping.js';
import { createTestDatabase, describePostgres, testPostgresUrl, type TestDatabase } from '../support/database.js';

// A process keeps its PostgreSQL connections open through quiet spells: pg's pool would close each
// after 10 s idle, and the burst of requests after a quiet spell would pay for opening them again
// and for preparing every statement on them anew.
const PG_DEFAULT_IDLE_MS = 10_000;

describePostgres('connections kept through a quiet spell', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    admin = new pg.Client({ connectionString: testPostgresUrl });
    await admin.connect();
    openBookkeeping(db, () => {});
  });
  afterAll(async () => {
    await closeBookkeeping(db);
    await admin.end();
    await db.dispose();
  });

  // Concurrent statements, each holding its connection a moment: one connection each.
  const pids = async (count: number, query: (sql: string) => Promise<unknown[]>) =>
    (
      await Promise.all(
        Array.from({ length: count }, async () => {
          const [row] = (await query('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)')) as { pid: number }[];
          return row!.pid;
        }),
      )
    ).sort();
  const alive = async (wanted: number[]) =>
    (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)', [wanted])).rows
      .map((r) => r.pid)
      .sort();

  it('keeps the pool’s and the queue’s connections open past the idle time that closed them', async () => {
    const main = await pids(3, (sql) => db.withConnection((query) => query(sql)));
    const queue = await pids(2, (sql) => bookkeeping(db).query(sql, []));
    expect(new Set(main).size).toBe(3);
    expect(new Set(queue).size).toBe(2);

    // The condition under test is time spent idle, so this waits out the time itself.
    await new Promise((resolve) => setTimeout(resolve, PG_DEFAULT_IDLE_MS + 1_000));

    expect(await alive([...main, ...queue])).toEqual([...main, ...queue].sort());
    // And the burst after the spell runs on them: no new connection is opened.
    expect(await pids(3, (sql) => db.withConnection((query) => query(sql)))).toEqual(main);
    expect(await pids(2, (sql) => bookkeeping(db).query(sql, []))).toEqual(queue);
  }, 30_000);
});
