import { afterAll, beforeAll, expect, it } from 'vitest';
import { rawTransaction } from '../../src/db/raw-sql.js';
import type { RawQueries } from '../../src/db/statements.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { countSocketWrites } from '../support/socket-writes.js';

// The allocator's transactions on plain pg: BEGIN leaves with the first statement and COMMIT with
// the last ($queryRawAndCommit), one write and one round trip each, and a failure anywhere still
// leaves nothing behind. Round trips are what a statement costs the server most on this
// project's machines; the writes to PostgreSQL's socket are counted here.

describePostgres('a transaction on plain pg', () => {
  let db: TestDatabase;
  let port: number;
  let writes = () => 0;
  const restore: (() => void)[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql', { poolSize: 2 });
    port = Number(new URL(db.url!).port || 5432);
    await db.prisma.$executeRawUnsafe(
      `CREATE TABLE pipelined (id int PRIMARY KEY, later int REFERENCES pipelined (id) DEFERRABLE INITIALLY DEFERRED)`,
    );
    const counter = countSocketWrites(port);
    restore.push(counter.restore);
    writes = counter.count;
  });
  afterAll(async () => {
    for (const undo of restore) undo();
    await db.dispose();
  });

  const rows = async () =>
    (await db.prisma.$queryRawUnsafe<{ id: number }[]>('SELECT id FROM pipelined ORDER BY id')).map((r) => r.id);
  const counted = async <T>(body: () => Promise<T>) => {
    const before = writes();
    const value = await body();
    return { value, writes: writes() - before };
  };

  it('sends BEGIN with the first statement and COMMIT with the last: one write per statement', async () => {
    await db.prisma.$executeRawUnsafe('DELETE FROM pipelined');
    // A connection of the pool is open and its statements prepared before counting.
    const run = () =>
      rawTransaction(db, 10_000, async (tx) => {
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (1) ON CONFLICT DO NOTHING`;
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (2) ON CONFLICT DO NOTHING`;
        return tx.$queryRawAndCommit!<{ n: number }[]>(Prisma.sql`SELECT count(*)::int AS n FROM pipelined`);
      });
    await run();
    const { value, writes: sent } = await counted(run);
    expect(value).toEqual([{ n: 2 }]);
    expect(sent).toBe(3);
    expect(await rows()).toEqual([1, 2]);

    // Without a last statement, the COMMIT is a round trip of its own; with no statement, nothing is sent.
    const plain = await counted(() =>
      rawTransaction(db, 10_000, async (tx) => {
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (3)`;
      }),
    );
    expect(plain.writes).toBe(2);
    const empty = await counted(() => rawTransaction(db, 10_000, async () => 'nothing'));
    expect(empty).toEqual({ value: 'nothing', writes: 0 });
    expect(await rows()).toEqual([1, 2, 3]);
  });

  it('sends statements started together (without waiting) in one write, run in the order started', async () => {
    await db.prisma.$executeRawUnsafe('DELETE FROM pipelined');
    const run = () =>
      rawTransaction(db, 10_000, async (tx) => {
        const [, second] = await Promise.all([
          tx.$executeRaw`INSERT INTO pipelined (id) VALUES (1) ON CONFLICT DO NOTHING`,
          // Runs after the insert, in a snapshot of its own: it sees it.
          tx.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM pipelined`,
        ]);
        return second;
      });
    await run();
    const { value, writes: sent } = await counted(run);
    expect(value).toEqual([{ n: 1 }]);
    // BEGIN and both statements, then the COMMIT.
    expect(sent).toBe(2);

    // The first fails: the one sent with it fails too, and nothing commits.
    await expect(
      rawTransaction(db, 10_000, (tx) =>
        Promise.all([
          tx.$executeRaw`INSERT INTO pipelined (id) VALUES (2), (NULL)`,
          tx.$executeRaw`INSERT INTO pipelined (id) VALUES (3)`,
        ]),
      ),
    ).rejects.toThrow(/null value/);
    expect(await rows()).toEqual([1]);
  });

  it('rolls back when the first, a middle or the last statement fails, or the COMMIT does', async () => {
    await db.prisma.$executeRawUnsafe('DELETE FROM pipelined');
    const failing: ((tx: RawQueries) => Promise<unknown>)[] = [
      // The first statement (sent with BEGIN).
      (tx: RawQueries) => tx.$executeRaw`INSERT INTO pipelined (id) VALUES (NULL)`,
      async (tx: RawQueries) => {
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (10)`;
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (10)`;
      },
      // The last statement, sent with COMMIT: the COMMIT of an aborted transaction rolls back.
      async (tx: RawQueries) => {
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (11)`;
        await tx.$queryRawAndCommit!(Prisma.sql`INSERT INTO pipelined (id) VALUES (11)`);
      },
      // The statement succeeds, and the COMMIT fails (a deferred foreign key).
      async (tx: RawQueries) => {
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (12)`;
        await tx.$queryRawAndCommit!(Prisma.sql`INSERT INTO pipelined (id, later) VALUES (13, 999) RETURNING id`);
      },
    ];
    for (const body of failing) {
      await expect(rawTransaction(db, 10_000, body)).rejects.toThrow();
      expect(await rows()).toEqual([]);
    }
    // The connections went back to the pool usable.
    const pool = (await db.prisma.$queryRawUnsafe<{ n: number }[]>('SELECT 1 AS n'))[0];
    expect(pool).toEqual({ n: 1 });
    await rawTransaction(db, 10_000, (tx) => tx.$executeRaw`INSERT INTO pipelined (id) VALUES (20)`);
    expect(await rows()).toEqual([20]);
  });

  it('refuses a statement after the COMMIT went out', async () => {
    await db.prisma.$executeRawUnsafe('DELETE FROM pipelined');
    await expect(
      rawTransaction(db, 10_000, async (tx) => {
        await tx.$queryRawAndCommit!(Prisma.sql`INSERT INTO pipelined (id) VALUES (30) RETURNING id`);
        await tx.$executeRaw`INSERT INTO pipelined (id) VALUES (31)`;
      }),
    ).rejects.toThrow('this transaction has committed');
    // What committed stays committed.
    expect(await rows()).toEqual([30]);
  });
});
