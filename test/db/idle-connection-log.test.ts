import pg from 'pg';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';

// PostgreSQL ending an idle pooled connection (a restart, an administrator, idle_session_timeout)
// is reported in the service's log, as a JSON line like every other, not on bare stderr.

/** Ends every other session on the test database; how many it ended. */
async function terminateOthers(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}

describePostgres('an idle database connection the server drops', () => {
  let testDb: TestDatabase;
  let consoleError: ReturnType<typeof vi.spyOn>;
  let lines: string[];

  beforeEach(async () => {
    // The test database's own pool stays unused: it opens no connection to be terminated.
    testDb = await createTestDatabase('postgresql', { poolSize: 1 });
    consoleError = vi.spyOn(console, 'error');
    lines = [];
  });
  afterEach(async () => {
    consoleError.mockRestore();
    await testDb.dispose();
  });

  const entries = () => lines.map((line) => JSON.parse(line) as { level: string; msg: string });
  const lostLines = () => entries().filter((entry) => /idle database connection lost/.test(entry.msg));

  it('goes to the logger given to openDatabase, at warn, and the pool carries on', async () => {
    const logger = createLogger('info', (line) => lines.push(line));
    const db: Database = await openDatabase({ url: testDb.url, dataDir: '', poolSize: 2, logger });
    try {
      // Two connections open and idle in the pool.
      await Promise.all([
        db.prisma.$queryRaw`SELECT pg_sleep(0.05)::text`,
        db.prisma.$queryRaw`SELECT pg_sleep(0.05)::text`,
      ]);
      const ended = await terminateOthers(testDb.url!);
      expect(ended).toBeGreaterThanOrEqual(1);
      // Every ended connection told before the next query: one whose end the pool has not heard
      // of yet would be handed to it (57P01, seen under load).
      await waitFor(() => lostLines().length >= ended);
      expect(lostLines()[0]).toMatchObject({
        level: 'warn',
        msg: expect.stringMatching(/^idle database connection lost: /),
      });
      expect(consoleError).not.toHaveBeenCalled();
      expect(await db.prisma.lease.count()).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('goes to the service log of a started server', async () => {
    const logger = createLogger('info', (line) => lines.push(line));
    let app: App | undefined;
    try {
      app = await startApp(
        {
          ...loadConfig({}),
          databaseUrl: testDb.url,
          port: 0,
          workerConcurrency: 0,
          databaseUpkeep: false,
          warmUpLeases: 0,
          shutdownTimeoutMs: 2_000,
        },
        logger,
      );
      expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
      expect(await terminateOthers(testDb.url!)).toBeGreaterThanOrEqual(1);
      await waitFor(() => lostLines().length > 0);
      expect(lostLines()[0]!.level).toBe('warn');
      expect(consoleError).not.toHaveBeenCalled();
      expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    } finally {
      await app?.close();
    }
  });
});
