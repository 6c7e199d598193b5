import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describeEachDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { liveResourceCountProblems } from '../model/snapshot.js';

// LiveResourceCount is kept by constraint triggers on Resource that run at commit (see the
// live_resource_count migration); a host pool reads it to tell that every host is taken.
describeEachDatabase('LiveResourceCount, kept by the database', (kind) => {
  let db: TestDatabase;
  let pool: number;
  let other: number;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const blueprint = (name: string) =>
      db.prisma.blueprint.create({ data: { name, implementation: 'host-pool', resourceType: 'host' } });
    pool = (await blueprint('pool')).id;
    other = (await blueprint('other')).id;
  });
  afterAll(() => db.dispose());

  const counts = async () =>
    Object.fromEntries(
      (await db.prisma.liveResourceCount.findMany()).map((c) => [c.blueprintId === pool ? 'pool' : 'other', c.count]),
    );
  const resource = (blueprintId: number, status: 'PENDING' | 'ACTIVE' | 'DESTROYED' = 'PENDING') =>
    db.prisma.resource.create({ data: { blueprintId, type: 'host', name: 'h', status } });

  it('counts the resources that are not DESTROYED through every kind of write', async () => {
    const a = await resource(pool);
    await resource(pool, 'ACTIVE');
    await resource(pool, 'DESTROYED');
    expect(await counts()).toEqual({ pool: 2 });

    // Live to live counts the same.
    await db.prisma.resource.update({ where: { id: a.id }, data: { status: 'ACTIVE' } });
    await db.prisma.resource.updateMany({ where: { blueprintId: pool }, data: { lastUsedAt: new Date() } });
    await db.prisma.resource.update({ where: { id: a.id }, data: { status: 'RELEASED' } });
    expect(await counts()).toEqual({ pool: 2 });
    await db.prisma.resource.update({ where: { id: a.id }, data: { status: 'DESTROYED' } });
    expect(await counts()).toEqual({ pool: 1 });

    // Moved to another blueprint; several rows in one statement; deletes of live and dead rows.
    const b = await resource(pool);
    await db.prisma.resource.update({ where: { id: b.id }, data: { blueprintId: other } });
    expect(await counts()).toEqual({ pool: 1, other: 1 });
    await db.prisma.resource.updateMany({ where: { status: { not: 'DESTROYED' } }, data: { status: 'BROKEN' } });
    expect(await counts()).toEqual({ pool: 1, other: 1 });
    await db.prisma.resource.deleteMany({ where: { id: b.id } });
    await db.prisma.resource.deleteMany({ where: { status: 'DESTROYED' } });
    expect(await counts()).toEqual({ pool: 1, other: 0 });
    expect(await liveResourceCountProblems(db)).toEqual([]);
  });

  it('moves at commit: a transaction does not see its own changes in it, a rolled back one changes nothing', async () => {
    const before = await counts();
    const inside = await db.prisma.$transaction(async (tx) => {
      await tx.resource.create({ data: { blueprintId: pool, type: 'host', name: 'h', status: 'PENDING' } });
      // Built and taken back in one transaction (as a build that lost its slot lock is): no change.
      const gone = await tx.resource.create({ data: { blueprintId: pool, type: 'host', name: 'h' } });
      await tx.resource.delete({ where: { id: gone.id } });
      return (await tx.liveResourceCount.findUnique({ where: { blueprintId: pool } }))?.count;
    });
    expect(inside).toBe(before['pool']);
    expect(await counts()).toEqual({ ...before, pool: before['pool']! + 1 });

    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.resource.create({ data: { blueprintId: other, type: 'host', name: 'h' } });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await counts()).toEqual({ ...before, pool: before['pool']! + 1 });

    // A build inside a savepoint that is rolled back (as a pass's try that failed is) never counts.
    await db.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe('SAVEPOINT try');
      await tx.resource.create({ data: { blueprintId: pool, type: 'host', name: 'h' } });
      await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT try');
      await tx.resource.create({ data: { blueprintId: other, type: 'host', name: 'h' } });
    });
    expect(await counts()).toEqual({ ...before, pool: before['pool']! + 1, other: (before['other'] ?? 0) + 1 });
    expect(await liveResourceCountProblems(db)).toEqual([]);
  });

  it('a TRUNCATE leaves every count at 0, and the model test’s check finds a count that is off', async () => {
    await db.prisma.$executeRawUnsafe('TRUNCATE "Resource" CASCADE');
    expect(await liveResourceCountProblems(db)).toEqual([]);
    await resource(pool);
    await db.prisma.liveResourceCount.update({ where: { blueprintId: pool }, data: { count: 3 } });
    expect(await liveResourceCountProblems(db)).toEqual([`blueprint ${pool} counts 3 live resources, 1 are live`]);
  });
});

describePostgres('LiveResourceCount under concurrent writers', () => {
  let db: TestDatabase;
  let url: string;
  let pool: number;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    url = db.url!;
    pool = (
      await db.prisma.blueprint.create({ data: { name: 'pool', implementation: 'host-pool', resourceType: 'host' } })
    ).id;
  });
  afterAll(() => db.dispose());

  const connect = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  };

  it('stays exact with builds and teardowns committing at once from many connections', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, connect));
    try {
      for (let round = 0; round < 20; round++) {
        await Promise.all(
          clients.map(async (c, i) => {
            await c.query('BEGIN');
            await c.query(
              `INSERT INTO "Resource" ("blueprintId", type, name, "updatedAt") VALUES ($1, 'host', 'h', now())`,
              [pool],
            );
            // Half of them also destroy a resource that is there.
            if (i % 2 === 1)
              await c.query(
                `UPDATE "Resource" SET status = 'DESTROYED' WHERE id = (
                   SELECT id FROM "Resource" WHERE status <> 'DESTROYED' ORDER BY id FOR NO KEY UPDATE SKIP LOCKED LIMIT 1)`,
              );
            await c.query('COMMIT');
          }),
        );
      }
      expect(await liveResourceCountProblems(db)).toEqual([]);
      const [row] = await db.prisma.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM "Resource" WHERE status <> 'DESTROYED'`;
      expect(row!.n).toBeGreaterThan(0);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  // The order the count's lock is taken in: a teardown holds its resource's row and then moves the
  // count; a pass builds (moving the count) and then locks resources it grants on. Were the count
  // moved at the write, each would wait for the other here and PostgreSQL would abort one.
  it('a pass that built and then waits for a resource being torn down does not deadlock with it', async () => {
    const [target] = await db.prisma.$queryRaw<{ id: number }[]>`
      INSERT INTO "Resource" ("blueprintId", type, name, status, "updatedAt") VALUES (${pool}, 'host', 't', 'RELEASED', now())
      RETURNING id`;
    const [pass, teardown] = await Promise.all([connect(), connect()]);
    try {
      for (const c of [pass, teardown]) await c.query(`SET lock_timeout = '10s'`);
      await pass.query('BEGIN');
      await pass.query(
        `INSERT INTO "Resource" ("blueprintId", type, name, "updatedAt") VALUES ($1, 'host', 'h', now())`,
        [pool],
      );
      await teardown.query('BEGIN');
      await teardown.query(`SELECT id FROM "Resource" WHERE id = $1 FOR NO KEY UPDATE`, [target!.id]);
      await teardown.query(`UPDATE "Resource" SET status = 'DESTROYED' WHERE id = $1`, [target!.id]);
      const passLocks = pass.query(`SELECT id FROM "Resource" WHERE id = $1 FOR NO KEY UPDATE`, [target!.id]);
      await waitUntilBlocked(pass);
      await teardown.query('COMMIT');
      await passLocks;
      await pass.query('COMMIT');
      expect(await liveResourceCountProblems(db)).toEqual([]);
    } finally {
      await Promise.all([pass.end(), teardown.end()]);
    }
  });

  /** Until `client`'s backend waits for a lock. */
  async function waitUntilBlocked(client: pg.Client): Promise<void> {
    const pid = (client as unknown as { processID: number }).processID;
    for (const started = Date.now(); Date.now() - started < 10_000;) {
      const [row] = await db.prisma.$queryRaw<{ waiting: boolean }[]>`
        SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = ${pid}`;
      if (row?.waiting) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the pass never waited for the resource');
  }
});
