import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { AUTOVACUUM_OFF_WARNING } from '../../src/db/upkeep.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';

// A server setting, not one a session can change: the test checks the branch the PostgreSQL it
// runs on is in (CI's has autovacuum off, so there the warning is what is checked).
describePostgres('start-up on a PostgreSQL without autovacuum', () => {
  let db: TestDatabase;
  let app: App;
  const lines: { level: string; msg: string }[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    const logger = createLogger('info', {
      write: (line) => lines.push(JSON.parse(line) as { level: string; msg: string }),
      format: 'json',
    });
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, logger);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('warns, at start-up, exactly when the server runs no autovacuum', async () => {
    const [row] = await db.prisma.$queryRaw<{ autovacuum: string }[]>`SHOW autovacuum`;
    const warned = lines.filter((line) => line.msg === AUTOVACUUM_OFF_WARNING);
    expect(warned.length).toBe(row!.autovacuum === 'off' ? 1 : 0);
    for (const line of warned) expect(line.level).toBe('warn');
  });
});
