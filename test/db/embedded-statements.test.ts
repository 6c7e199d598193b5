import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawQueries, rawTransaction } from '../../src/db/raw-sql.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

// The allocator's statements on PGlite go through its wire protocol as prepared statements
// (src/db/embedded-sql.ts) instead of the Prisma client: each is parsed once and run by name,
// its results are what the Prisma client's $queryRaw gives, and a transaction holds the one
// connection so that nothing else's statements run inside it.

describe('statements on the embedded database', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    await db.prisma.$executeRawUnsafe(`CREATE TABLE embedded (id int PRIMARY KEY, label text)`);
  });
  afterAll(() => db.dispose());

  const prepared = async (fragment: string) =>
    (
      await db.prisma.$queryRawUnsafe<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE $1`,
        `%${fragment}%`,
      )
    )[0]!.n;

  it('parses a statement once and runs it by name after', async () => {
    const queries = await rawQueries(db);
    for (let i = 0; i < 5; i++) {
      const rows = await queries.$queryRaw<{ n: number }[]>`SELECT ${i}::int + 1 AS n /* once */`;
      expect(rows).toEqual([{ n: i + 1 }]);
    }
    expect(await prepared('/* once */')).toBe(1);
  });

  it('gives the same values as the Prisma client for the types the allocator reads', async () => {
    const at = new Date('2026-03-04T05:06:07.089Z');
    const sql = Prisma.sql`SELECT ${at}::timestamp AS at, 9007199254740993::bigint AS big, 3::int AS small,
      ${['a', 'b"c', null]}::text[] AS list, jsonb_build_object('k', ${'v'}::text, 'n', 1) AS doc,
      NULL::text AS nothing, true AS yes`;
    const [ours] = await (await rawQueries(db)).$queryRaw<Record<string, unknown>[]>(sql);
    const [theirs] = await db.prisma.$queryRaw<Record<string, unknown>[]>(sql);
    expect(ours).toEqual(theirs);
    expect(ours).toEqual({
      at,
      big: 9007199254740993n,
      small: 3,
      list: ['a', 'b"c', null],
      doc: { k: 'v', n: 1 },
      nothing: null,
      yes: true,
    });
  });

  it('gives each row its own object, with the columns as the statement names them', async () => {
    const rows = await (
      await rawQueries(db)
    ).$queryRaw<Record<string, unknown>[]>(
      Prisma.sql`SELECT g AS "__proto__", g * 2 AS "constructor" FROM generate_series(1, 2) g`,
    );
    expect(rows.map((row) => Object.getPrototypeOf(row))).toEqual([Object.prototype, Object.prototype]);
    expect(rows.map((row) => Object.getOwnPropertyDescriptor(row, '__proto__')?.value)).toEqual([1, 2]);
    expect(rows.map((row) => row['constructor'])).toEqual([2, 4]);
  });

  it('counts the rows a statement changed', async () => {
    const queries = await rawQueries(db);
    await queries.$executeRaw`DELETE FROM embedded`;
    expect(await queries.$executeRaw`INSERT INTO embedded (id) SELECT g FROM generate_series(1, 3) g`).toBe(3);
    expect(await queries.$executeRaw`UPDATE embedded SET label = 'x' WHERE id > 1`).toBe(2);
  });

  it('reports a statement that does not parse every time, and is not left half-prepared by it', async () => {
    const queries = await rawQueries(db);
    for (let i = 0; i < 2; i++) await expect(queries.$queryRaw`SELEC 1 /* broken */`).rejects.toThrow(/syntax error/);
    expect(await prepared('/* broken */')).toBe(0);
    expect(await queries.$queryRaw`SELECT 1 AS one`).toEqual([{ one: 1 }]);
  });

  it('rolls a transaction back on a throw and on a failing statement, and keeps its error', async () => {
    const queries = await rawQueries(db);
    await queries.$executeRaw`DELETE FROM embedded`;
    await expect(
      rawTransaction(db, 10_000, async (tx) => {
        await tx.$executeRaw`INSERT INTO embedded (id) VALUES (1)`;
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const duplicate = rawTransaction(db, 10_000, async (tx) => {
      await tx.$executeRaw`INSERT INTO embedded (id) VALUES (2)`;
      await tx.$executeRaw`INSERT INTO embedded (id) VALUES (2)`;
    });
    await expect(duplicate).rejects.toMatchObject({ code: '23505' });
    expect(await queries.$queryRaw`SELECT id FROM embedded`).toEqual([]);
    // The connection is usable, outside a transaction, afterwards.
    await rawTransaction(db, 10_000, (tx) => tx.$executeRaw`INSERT INTO embedded (id) VALUES (3)`);
    expect(await queries.$queryRaw`SELECT id FROM embedded`).toEqual([{ id: 3 }]);
  });

  it('fails a transaction that outlives its time at its next statement, and rolls it back', async () => {
    const queries = await rawQueries(db);
    await queries.$executeRaw`DELETE FROM embedded`;
    const expired = rawTransaction(db, 50, async (tx) => {
      await tx.$executeRaw`INSERT INTO embedded (id) VALUES (4)`;
      await tx.$queryRaw`SELECT pg_sleep(0.1)`;
      await tx.$executeRaw`INSERT INTO embedded (id) VALUES (5)`;
    });
    await expect(expired).rejects.toThrow(/expired after 50 ms/);
    expect(await queries.$queryRaw`SELECT id FROM embedded`).toEqual([]);
  });

  it("keeps everyone else's statements, raw or through the client, out of a transaction until it ends", async () => {
    const queries = await rawQueries(db);
    await queries.$executeRaw`DELETE FROM embedded`;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
    const transaction = rawTransaction(db, 10_000, async (tx) => {
      await tx.$executeRaw`INSERT INTO embedded (id) VALUES (6)`;
      inserted();
      await held;
      await tx.$executeRaw`UPDATE embedded SET label = 'done' WHERE id = 6`;
    });
    await insertedYet;
    // On one connection, a statement run inside the open transaction would see its uncommitted row.
    const raw = queries.$queryRaw<{ label: string | null }[]>`SELECT label FROM embedded WHERE id = 6`;
    const client = db.prisma.$queryRawUnsafe<{ label: string | null }[]>('SELECT label FROM embedded WHERE id = 6');
    release();
    await transaction;
    expect(await raw).toEqual([{ label: 'done' }]);
    expect(await client).toEqual([{ label: 'done' }]);
  });
});
