import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';

// serve() starts the event fan-out, the job worker and the schema watch before it listens. A start
// that cannot listen stops them again: the process exits on it, but a caller that goes on (a test,
// an embedding) would otherwise keep them running on its database. On PostgreSQL the fan-out's
// LISTEN connection shows whether they were stopped (one function stops them all, as close does).
describePostgres('a server that cannot listen', () => {
  let db: TestDatabase;
  let taken: Server;
  let port: number;
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
    await db.dispose();
  });

  const listeners = async () =>
    (
      await db.prisma.$queryRaw<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'LISTEN %'`
    )[0]!.n;

  it('stops what it had started: its event listener leaves the database', async () => {
    const config = { ...loadConfig({}), host: '127.0.0.1', port, workerConcurrency: 2 };
    // The same start on a free port listens on the database, and close() lets go of it.
    const app = await serve(
      db,
      { ...config, port: 0 },
      createLogger('error', () => {}),
    );
    await waitFor(async () => (await listeners()) === 1);
    await app.close();
    await waitFor(async () => (await listeners()) === 0);

    await expect(
      serve(
        db,
        config,
        createLogger('error', () => {}),
      ),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await waitFor(async () => (await listeners()) === 0);
  }, 60_000);
});
