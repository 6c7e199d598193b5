import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isConnectionLoss, readThroughOutage } from '../../src/db/connection-loss.js';
import { createTestDatabase, describePostgres } from '../support/database.js';

describe('reading through a database outage', () => {
  it('retries a lost connection until the read succeeds', async () => {
    let calls = 0;
    const value = await readThroughOutage(async () => {
      if (++calls < 3) throw Object.assign(new Error('Server has closed the connection.'), { code: 'P1017' });
      return 'read';
    });
    expect([value, calls]).toEqual(['read', 3]);
  });

  it('fails at once for an error that is not a lost connection', async () => {
    let calls = 0;
    const failing = readThroughOutage(async () => {
      calls++;
      throw Object.assign(new Error('Unique constraint failed'), { code: 'P2002' });
    });
    await expect(failing).rejects.toThrow('Unique constraint failed');
    expect(calls).toBe(1);
  });

  it('gives up with the last error once its patience is spent', async () => {
    let calls = 0;
    const started = Date.now();
    const failing = readThroughOutage(
      async () => {
        calls++;
        throw new Error('Connection terminated unexpectedly');
      },
      { patienceMs: 300 },
    );
    await expect(failing).rejects.toThrow('Connection terminated unexpectedly');
    expect(calls).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});

describePostgres('connection loss as PostgreSQL reports it', () => {
  it('recognizes a terminated backend through Prisma and through pg, and not a bad query', async () => {
    const db = await createTestDatabase('postgresql');
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      await db.prisma.lease.count();
      // Prisma's promises are lazy: then() sends the query.
      const victim = db.prisma.$queryRawUnsafe('SELECT pg_sleep(5)::text AS slept').then(
        () => null,
        (error: unknown) => error,
      );
      const plain = new pg.Client({ connectionString: db.url });
      plain.on('error', () => {});
      await plain.connect();
      const plainVictim = plain.query('SELECT pg_sleep(5)').then(
        () => null,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const killed = await admin.query(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep%'",
      );
      expect(killed.rows[0].n).toBe(2);
      const lost = await victim;
      expect(lost).not.toBeNull();
      expect(isConnectionLoss(lost)).toBe(true);
      const plainLost = await plainVictim;
      expect(plainLost).not.toBeNull();
      expect(isConnectionLoss(plainLost)).toBe(true);
      await plain.end().catch(() => {});

      const bad = await db.prisma.$queryRawUnsafe('SELECT * FROM no_such_table').then(
        () => null,
        (error: unknown) => error,
      );
      expect(bad).not.toBeNull();
      expect(isConnectionLoss(bad)).toBe(false);
    } finally {
      await admin.end();
      await db.dispose();
    }
  });
});
