import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { createLocalHosts } from './local-hosts.js';
import { waitFor } from '../support/wait.js';
import { startCli } from './run-cli.js';

// `drydock run` and `drydock lease --heartbeat`: the real binary against a real server whose host
// runs commands on this machine. Whatever way the command ends, the lease must end too.

const quiet = createLogger('error', () => {});

describeEachDatabase('drydock run', (kind) => {
  let db: TestDatabase;
  let app: App;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalTransport: true }, quiet);
    env = { DRYDOCK_URL: app.url };
    await createLocalHosts(app);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  const leaseOf = (stderr: string) => Number(/requested lease (\d+)/.exec(stderr)![1]);
  /** The lease ends: released by the command, not by its heartbeat running out (30 s by default). */
  const ended = (id: number) =>
    waitFor(async () => {
      const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id } });
      return lease.status === 'DESTROYED' || lease.status === 'RELEASED' ? lease : null;
    }, 10_000);
  const releasedByCommand = async (id: number) => {
    const logs = await db.prisma.log.findMany({ where: { leaseId: id, type: 'lease-released' } });
    expect(logs.map((l) => l.data)).toEqual([{ reason: 'command' }]);
  };

  it('runs the command on the lease with its fence, exits with its code and releases the lease', async () => {
    const cli = startCli(['run', '--type', 'host', '--', 'sh', '-c', 'echo "fence=$DRYDOCK_LEASE_FENCE"; exit 0'], {
      env,
    });
    expect(await cli.exited).toBe(0);
    const id = leaseOf(cli.stderr());
    const lease = await ended(id);
    expect(cli.stdout()).toBe(`fence=${lease.fence}\n`);
    expect(lease.heartbeatSeconds).toBe(30);
    await releasedByCommand(id);
  }, 60_000);

  it('exits with the code of a failing command and still releases the lease', async () => {
    const cli = startCli(['run', '--type', 'host', '--', 'sh', '-c', 'echo broken >&2; exit 7'], { env });
    expect(await cli.exited).toBe(7);
    expect(cli.stderr()).toContain('broken');
    const id = leaseOf(cli.stderr());
    await ended(id);
    await releasedByCommand(id);
  }, 60_000);

  it('releases the lease and kills the command when it gets SIGTERM', async () => {
    const cli = startCli(['run', '--type', 'host', '--', 'sh', '-c', 'echo started; sleep 60'], { env });
    await cli.waitFor(/started/);
    const id = leaseOf(cli.stderr());
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(130);
    await ended(id);
    await releasedByCommand(id);
    const finished = await waitFor(() =>
      db.prisma.log.findFirst({ where: { leaseId: id, type: 'lease-command-finished' } }),
    );
    expect((finished.data as { exitCode: number | null }).exitCode).not.toBe(0);
  }, 60_000);

  it('refuses a heartbeat out of bounds before asking for anything', async () => {
    const before = await db.prisma.lease.count();
    const cli = startCli(['run', '--type', 'host', '--heartbeat', '0', '--', 'true'], { env });
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toContain('--heartbeat');
    expect(await db.prisma.lease.count()).toBe(before);
  }, 60_000);

  it('drydock lease --heartbeat holds the lease until SIGTERM, then releases it', async () => {
    // 2 s, not 1: a CLI process starved of CPU on a busy machine must still get its beat in.
    const cli = startCli(['lease', '--type', 'host', '--heartbeat', '2'], { env });
    await cli.waitFor(/holding lease/);
    const id = leaseOf(cli.stderr());
    // Held past several heartbeat periods by this process alone.
    const heldSince = Date.now();
    await waitFor(async () => {
      const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id } });
      return lease.status !== 'ACTIVE' || lease.lastSeenAt!.getTime() > heldSince + 5_000;
    });
    expect((await db.prisma.lease.findUniqueOrThrow({ where: { id } })).status).toBe('ACTIVE');
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    await ended(id);
    await releasedByCommand(id);
  }, 60_000);
});
