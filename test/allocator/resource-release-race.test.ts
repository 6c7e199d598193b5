import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, hostPoolConfig, unwrap, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// Grants race the release of the resource they land on: a lease granted before the release
// committed is released with it (resource-released), none is granted after, and the resource is
// destroyed only once its leases are gone. PostgreSQL only: the race needs real concurrent
// connections. RACE_ROUNDS raises the rounds when hunting a rare failure.
const ROUNDS = Number(process.env['RACE_ROUNDS'] ?? 8);

describePostgres('grants racing a resource release', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 16 });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  /** Leases live on a resource that is not ACTIVE: never on a DESTROYED one, at any moment. */
  const onDestroyed = async () => {
    const [row] = await h.db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM "Lease" l JOIN "Resource" r ON r.id = l."resourceId"
      WHERE l.status IN ('ACQUIRED', 'ACTIVE') AND r.status = 'DESTROYED'`;
    return row!.n;
  };

  for (let round = 1; round <= ROUNDS; round++) {
    it(`leases requested while their resources are released (round ${round})`, async () => {
      const worker = h.services.worker.start({ concurrency: 4 });
      let monitoring = true;
      let worst = 0;
      const monitor = (async () => {
        while (monitoring) worst = Math.max(worst, await onDestroyed());
      })();
      try {
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'pool',
            implementation: 'host-pool',
            config: hostPoolConfig(2),
          }),
        );
        const request = () => h.services.leases.request(h.system, { resourceType: 'host' }).then(unwrap);
        const first = await Promise.all(Array.from({ length: 6 }, request));
        await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === first.length);
        const resources = await h.db.prisma.resource.findMany({ where: { status: 'ACTIVE' } });
        expect(resources.length).toBeGreaterThan(0);

        // More leases, and the release of every resource, at the same time.
        const racing = Array.from({ length: 20 }, request);
        await new Promise((resolve) => setTimeout(resolve, round % 4));
        await Promise.all(resources.map(async (r) => unwrap(await h.services.resources.release(h.system, r.id))));
        const later = await Promise.all(racing);

        const released = resources.map((r) => r.id);
        await waitFor(
          async () =>
            (await h.db.prisma.resource.count({ where: { id: { in: released }, status: 'DESTROYED' } })) ===
            released.length,
        );
        // Every lease ends up ACTIVE on a live resource (a new one of the same hosts) or ended with
        // its resource; none is left on a released one.
        await waitFor(
          async () => (await h.db.prisma.lease.count({ where: { status: { in: ['PENDING', 'ACQUIRED'] } } })) === 0,
        );
        const leases = await h.db.prisma.lease.findMany({ include: { resource: true } });
        expect(leases).toHaveLength(first.length + later.length);
        for (const lease of leases) {
          if (lease.status === 'ACTIVE') {
            expect(lease.resource?.status).toBe('ACTIVE');
            expect(released).not.toContain(lease.resourceId);
            continue;
          }
          expect(lease.status).toBe('DESTROYED');
          expect(released).toContain(lease.resourceId);
          const end = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-released' } });
          expect(end.data).toEqual({ reason: 'resource-released' });
        }
        // The first leases were all on the released resources.
        for (const lease of first) expect(leases.find((l) => l.id === lease.id)?.status).toBe('DESTROYED');
      } finally {
        monitoring = false;
        await monitor;
        await worker.stop();
      }
      expect(worst).toBe(0);
      expect(await onDestroyed()).toBe(0);
    }, 60_000);
  }
  // Resources that open later: their leases are ACQUIRED (not yet ACTIVE) when the release lands,
  // and a lease update that read the resource just before the release committed sends its lease
  // back to the queue; the released resource must still be destroyed, not wait for a wake-up
  // that the lease, no longer on it, would never send.
  for (let round = 1; round <= ROUNDS; round++) {
    it(`resources released while their leases wait for them to open (round ${round})`, async () => {
      const worker = h.services.worker.start({ concurrency: 4 });
      try {
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'later',
            implementation: 'test',
            config: { exclusive: true, activation: 'later', activateAfterMs: 20 + (round % 4) * 10 },
          }),
        );
        const request = () => h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap);
        const leases = await Promise.all(Array.from({ length: 6 }, request));
        await waitFor(
          async () => (await h.db.prisma.resource.count({ where: { status: { in: ['PENDING', 'ACTIVE'] } } })) >= 3,
        );
        const resources = await h.db.prisma.resource.findMany({ where: { status: { in: ['PENDING', 'ACTIVE'] } } });
        await Promise.all(resources.map(async (r) => unwrap(await h.services.resources.release(h.system, r.id))));
        const released = resources.map((r) => r.id);
        await waitFor(
          async () =>
            (await h.db.prisma.resource.count({ where: { id: { in: released }, status: 'DESTROYED' } })) ===
            released.length,
          30_000,
        );
        // Every lease comes to rest: ended with its resource, or sent back and served on a new one.
        await waitFor(
          async () =>
            (await h.db.prisma.lease.count({
              where: { id: { in: leases.map((l) => l.id) }, status: { in: ['PENDING', 'ACQUIRED'] } },
            })) === 0,
          30_000,
        );
        expect(await onDestroyed()).toBe(0);
      } finally {
        await worker.stop();
      }
    }, 90_000);
  }
});
