import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';
import { createLocalHosts } from './local-hosts.js';
import { runCliPiped } from './run-cli.js';

// `drydock leases | head -1`: the reader closes the pipe before drydock is done writing. drydock
// then stops quietly with exit 0, and a command that holds something lets go of it first.
describe('drydock writing into a pipe its reader closed', () => {
  let db: TestDatabase;
  let app: App;
  beforeAll(async () => {
    db = await createTestDatabase('pglite');
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalTransport: true },
      createLogger('error', () => {}),
    );
    // Far more than a pipe and `head`'s buffer hold together, so drydock is still writing when
    // `head` has gone.
    await db.prisma.lease.createMany({
      data: Array.from({ length: 400 }, (_, n) => ({ resourceType: 'host', attributes: { n, note: 'x'.repeat(400) } })),
    });
    await createLocalHosts(app);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const piped = (args: string[], reader: string) => runCliPiped(args, reader, { DRYDOCK_URL: app.url });

  it('exits 0 without a word when the reader of a listing stops early', async () => {
    const table = await piped(['leases', '--all', '--limit', '500'], 'head -n 1');
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^ID\s+STATUS/);
    const json = await piped(['leases', '--all', '--limit', '500', '--json'], 'head -c 1');
    expect(json).toEqual({ code: 0, stderr: '', stdout: '[' });
  }, 60_000);

  it('keeps the exit code of a command that failed on its own, though its reader had gone', async () => {
    // The reader closes the pipe at once, long before drydock has its answer to print: drydock's
    // first write meets EPIPE. The dry run finds no blueprint for the type: exit 1, as unpiped.
    const reader = 'exec 0<&-; exit 0';
    const failed = await piped(['candidates', '--type', 'no-such-type'], reader);
    expect(failed).toEqual({ code: 1, stderr: '', stdout: '' });
    const served = await piped(['candidates', '--type', 'host'], reader);
    expect(served).toEqual({ code: 0, stderr: '', stdout: '' });
  }, 60_000);

  it('stops a command streaming into a closed pipe, releases its lease and exits 0', async () => {
    const run = await piped(['run', '--type', 'host', '--', 'yes'], 'head -n 1');
    expect(run.stdout).toBe('y\n');
    expect(run.code).toBe(0);
    expect(run.stderr).not.toMatch(/EPIPE|Error/);
    // The only lease with a heartbeat: drydock run's.
    const lease = await db.prisma.lease.findFirstOrThrow({ where: { heartbeatSeconds: { not: null } } });
    // Released by drydock on its way out, not later by its heartbeat lapsing (30 s).
    const released = await waitFor(
      () => db.prisma.log.findFirst({ where: { leaseId: lease.id, type: 'lease-released' } }),
      10_000,
    );
    expect(released.data).toEqual({ reason: 'command' });
  }, 60_000);
});
