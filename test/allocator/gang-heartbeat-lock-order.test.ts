import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A heartbeat through one part of a gang sees all its parts. Its statement must lock them in id
// order, as the release and the pass do: in the order a scan finds them (a part's row moved by an
// update comes after the others) it could hold one part while waiting for another that a release
// holds while waiting for the first.

describePostgres('a gang’s heartbeat beside a transaction locking its parts in id order', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 4 });
  });
  afterAll(() => h.dispose());

  it('takes the parts’ locks in id order: no deadlock, both commit', async () => {
    await h.reset();
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'slots',
        implementation: 'test',
        config: { exclusive: true, maxResources: 2 },
      }),
    );
    const [first, second] = unwrap(
      await h.services.leases.requestGang(h.system, {
        parts: [{ resourceType: 'test-slot', count: 2 }],
        heartbeatSeconds: 60,
      }),
    ).sort((a, b) => a.id - b.id);
    // The first part's row now lies after the second's.
    await h.db.prisma.$executeRaw`UPDATE "Lease" SET priority = 1, "updatedAt" = now() WHERE id = ${first!.id}`;
    let beat: Promise<unknown> | undefined;
    await h.db.prisma.$transaction(
      async (tx) => {
        const [{ pid }] = await tx.$queryRaw<[{ pid: number }]>`
          SELECT pg_backend_pid() AS pid FROM "Lease" WHERE id = ${first!.id} FOR NO KEY UPDATE`;
        beat = h.services.leases.heartbeat(h.system, second!.id).catch((error: unknown) => error);
        await waitFor(async () => {
          const [row] = await h.db.prisma.$queryRaw<{ waiting: number }[]>`
            SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`;
          return row!.waiting === 1;
        });
        await tx.$queryRaw`SELECT id FROM "Lease" WHERE id = ${second!.id} FOR NO KEY UPDATE`;
      },
      { timeout: 30_000 },
    );
    expect(await beat!).toMatchObject({ ok: true });
  });
});
