import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { runCliPiped } from './run-cli.js';

// `drydock leases --json | jq`: the whole output reaches a pipe that reads slower than the CLI
// writes, however large, before the CLI exits.
describe('drydock output into a pipe', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0 },
      createLogger('error', () => {}),
    );
    await db.prisma.lease.createMany({
      data: Array.from({ length: 300 }, (_, n) => ({ resourceType: 'host', attributes: { n, note: 'x'.repeat(200) } })),
    });
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('writes all of a listing larger than a pipe holds before exiting', async () => {
    // The reader starts late, so the pipe is full when the CLI is done writing.
    const { stdout, stderr, code } = await runCliPiped(
      ['leases', '--all', '--limit', '500', '--json'],
      '(sleep 2; cat)',
      { DRYDOCK_URL: app.url },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.length).toBeGreaterThan(65_536);
    expect((JSON.parse(stdout) as unknown[]).length).toBe(300);
  }, 60_000);
});
