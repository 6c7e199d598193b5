import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runDecoded } from '../../src/db/decoded-query.js';
import { rawQueries, rawTransaction } from '../../src/db/raw-sql.js';
import { statement } from '../../src/db/statements.js';
import { Prisma } from '../../src/generated/prisma/client.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';

// The allocator's statements on plain pg decode their rows themselves (src/db/decoded-query.ts),
// keeping each statement's row shape by its name: the rows must be what pg and the Prisma client
// give, whatever the columns are called, run after run, and a value that cannot be decoded must
// fail its statement and nothing else.

describePostgres('rows of the allocator’s statements on plain pg', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql', { poolSize: 2 });
    pool = new pg.Pool({ connectionString: db.url!, max: 2 });
  });
  afterAll(async () => {
    await pool.end();
    await db.dispose();
  });

  const at = new Date('2026-03-04T05:06:07.089Z');
  const typed = (
    n: number,
  ) => Prisma.sql`SELECT ${at}::timestamp AS at, 9007199254740993::bigint AS big, ${n}::int AS small,
      ${['a', 'b"c', null]}::text[] AS list, jsonb_build_object('k', ${'v'}::text, 'n', ${n}::int) AS doc,
      NULL::text AS nothing, true AS yes, ${n % 2 === 0 ? null : at}::timestamp AS sometimes`;

  it('gives the values the Prisma client gives, on every run of a statement, alone and in a transaction', async () => {
    const queries = await rawQueries(db);
    for (let n = 0; n < 6; n++) {
      const [theirs] = await db.prisma.$queryRaw<Record<string, unknown>[]>(typed(n));
      const [alone] = await queries.$queryRaw<Record<string, unknown>[]>(typed(n));
      const [inTransaction] = await rawTransaction(db, 10_000, (tx) =>
        tx.$queryRaw<Record<string, unknown>[]>(typed(n)),
      );
      expect(alone).toEqual(theirs);
      expect(inTransaction).toEqual(theirs);
      expect(alone).toEqual({
        at,
        big: 9007199254740993n,
        small: n,
        list: ['a', 'b"c', null],
        doc: { k: 'v', n },
        nothing: null,
        yes: true,
        sometimes: n % 2 === 0 ? null : at,
      });
      expect(Object.keys(alone!)).toEqual(['at', 'big', 'small', 'list', 'doc', 'nothing', 'yes', 'sometimes']);
    }
  });

  it('gives each row of a result its own object, with the columns as the statement names them', async () => {
    const queries = await rawQueries(db);
    const rows = await queries.$queryRaw<Record<string, unknown>[]>(
      Prisma.sql`SELECT g AS "__proto__", g * 2 AS "constructor", 'x' AS "toString" FROM generate_series(1, 3) g`,
    );
    expect(rows).toHaveLength(3);
    rows.forEach((row, i) => {
      expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
      expect(Object.keys(row)).toEqual(['__proto__', 'constructor', 'toString']);
      expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe(i + 1);
      expect(row['constructor']).toBe((i + 1) * 2);
    });
    rows[0]!['toString'] = 'changed';
    expect(rows[1]!['toString']).toBe('x');
  });

  it('fails only the statement whose value cannot be decoded, and gives its connection back', async () => {
    const refusing: pg.CustomTypesConfig = {
      getTypeParser: () => () => {
        throw new Error('not a value this column may hold');
      },
    } as pg.CustomTypesConfig;
    const sql = Prisma.sql`SELECT ${1}::int AS refused /* decoded-rows refusal */`;
    // More runs than the pool has connections: a connection kept by a failed statement would hang the rest.
    for (let i = 0; i < 5; i++) {
      await expect(runDecoded(pool, { ...statement(sql, []), types: refusing })).rejects.toThrow(
        'not a value this column may hold',
      );
      const answer = await runDecoded(pool, statement(sql, []));
      expect(answer.rows).toEqual([{ refused: 1 }]);
    }
    const client = await pool.connect();
    try {
      await expect(runDecoded(client, { ...statement(sql, []), types: refusing })).rejects.toThrow('not a value');
      expect((await runDecoded(client, statement(sql, []))).rows).toEqual([{ refused: 1 }]);
    } finally {
      client.release();
    }
    expect(pool.totalCount).toBeLessThanOrEqual(2);
    expect(pool.waitingCount).toBe(0);
  });
});
