import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/services/index.js';
import { describePostgres } from '../support/database.js';
import {
  createHarness,
  fastAllocator,
  fastWorker,
  hostPoolConfig,
  RecordingEvents,
  unwrap,
  type Harness,
} from '../support/allocator-harness.js';
import { createTestBlueprint } from '../support/test-blueprint.js';

// Races mean something only with real concurrent connections: PostgreSQL only. Each race runs
// several times on a fresh database state, with several allocators (each its own services, worker
// and claims) working one queue.

// Two rounds each by default, the least that still shows a race is not won by luck once; raise
// them (RACE_ROUNDS, RACE_500_ROUNDS) when hunting a rare failure. The suite's time is bounded by
// this file, the 500-lease race being its longest test.
const ROUNDS = Number(process.env['RACE_ROUNDS'] ?? 2);
const ROUNDS_500 = Number(process.env['RACE_500_ROUNDS'] ?? 2);

describePostgres('allocator races', () => {
  let h: Harness;
  let allocators: Services[] = [];
  let events: RecordingEvents;
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 24 });
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    await h.reset();
  });

  async function startAllocators(count: number, concurrency: number) {
    events = new RecordingEvents();
    allocators = Array.from({ length: count }, (_, i) =>
      createServices({
        db: h.db,
        events,
        workerId: `allocator-${i}`,
        implementations: [createTestBlueprint(h.control)],
        allocator: { ...fastAllocator, backoffCapMs: 5000, idleRetryMs: 30_000 },
        worker: { ...fastWorker, sweepIntervalMs: 200 },
      }),
    );
    const handles = allocators.map((a) => a.worker.start({ concurrency }));
    return () => Promise.all(handles.map((handle) => handle.stop()));
  }

  /** Resolves when `done()` holds, re-checked on every event (and on a slow timer, in case none comes). */
  function until(done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let busy = false;
      const check = async () => {
        if (busy) return;
        busy = true;
        try {
          if (await done()) finish(resolve);
        } catch (error) {
          finish(() => reject(error as Error));
        } finally {
          busy = false;
        }
      };
      const unsubscribe = events.subscribe(() => void check());
      const slow = setInterval(() => void check(), 250);
      const timer = setTimeout(() => finish(() => reject(new Error(`not done after ${timeoutMs} ms`))), timeoutMs);
      const finish = (then: () => void) => {
        unsubscribe();
        clearInterval(slow);
        clearTimeout(timer);
        then();
      };
      void check();
    });
  }

  for (let round = 1; round <= ROUNDS; round++) {
    it(`200 concurrent leases on a 3-host pool build one resource per binding (round ${round})`, async () => {
      const stop = await startAllocators(3, 4);
      try {
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'pool',
            implementation: 'host-pool',
            config: hostPoolConfig(3),
          }),
        );
        const client = allocators[0]!;
        const leases = await Promise.all(
          Array.from({ length: 200 }, () => client.leases.request(h.system, { resourceType: 'host' }).then(unwrap)),
        );
        await until(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 200, 60_000);
        const resources = await h.db.prisma.resource.findMany();
        const bindings = resources.map((r) => (r.attributes as { binding: string }).binding).sort();
        expect(bindings).toEqual(['build/host0', 'build/host1', 'build/host2']);
        expect(resources.every((r) => r.status === 'ACTIVE')).toBe(true);
        const perHost = await h.db.prisma.lease.groupBy({ by: ['resourceId'], _count: { _all: true } });
        expect(perHost).toHaveLength(3);
        expect(leases).toHaveLength(200);
        // The race was real: allocators lost binding slot locks to each other and retried.
        const lost = await h.db.prisma.log.count({ where: { type: 'slot-lock-failure' } });
        const allocated = await h.db.prisma.log.count({ where: { type: 'resource-allocated' } });
        expect(allocated).toBe(3);
        console.log(`round ${round}: ${lost} slot lock failures on the way`);
      } finally {
        await stop();
      }
    }, 90_000);
  }

  for (let round = 1; round <= ROUNDS_500; round++) {
    it(`500 concurrent leases on 10 exclusive slots: never two at once on one slot, all served (round ${round})`, async () => {
      const stop = await startAllocators(3, 5);
      const violations: string[] = [];
      let monitoring = true;
      try {
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'slots',
            implementation: 'test',
            config: { exclusive: true },
            resourceLimit: 10,
          }),
        );
        const client = allocators[0]!;
        // The client holds each lease briefly once it is ACTIVE, then releases it.
        const releasing = new Set<number>();
        const unsubscribe = events.subscribe((event) => {
          if (event.kind === 'lease' && event.status === 'ACTIVE' && !releasing.has(event.leaseId)) {
            releasing.add(event.leaseId);
            setTimeout(() => void client.leases.release(h.system, event.leaseId), 2);
          }
        });
        // An independent observer: a consistent snapshot never shows two live leases on one resource.
        const monitor = (async () => {
          while (monitoring) {
            const rows = await h.db.prisma.$queryRaw<{ resourceId: number; n: bigint }[]>`
              SELECT "resourceId", count(*) AS n FROM "Lease" WHERE status IN ('ACQUIRED', 'ACTIVE') GROUP BY "resourceId" HAVING count(*) > 1`;
            for (const row of rows) violations.push(`resource ${row.resourceId} had ${row.n} live leases`);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        })();
        await Promise.all(
          Array.from({ length: 500 }, () =>
            client.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap),
          ),
        );
        const started = Date.now();
        await until(async () => (await h.db.prisma.lease.count({ where: { status: 'DESTROYED' } })) === 500, 140_000);
        console.log(`round ${round}: 500 leases served in ${Date.now() - started} ms`);
        const phases = await h.db.prisma.$queryRaw<{ a: number; b: number; c: number }[]>`
          SELECT avg(EXTRACT(EPOCH FROM (q."createdAt" - a."createdAt")) * 1000)::float AS a,
                 avg(EXTRACT(EPOCH FROM (r."createdAt" - q."createdAt")) * 1000)::float AS b,
                 avg(EXTRACT(EPOCH FROM (d."createdAt" - r."createdAt")) * 1000)::float AS c
          FROM "Log" a JOIN "Log" q ON q."leaseId" = a."leaseId" AND q.type = 'lease-release-requested'
          JOIN "Log" r ON r."leaseId" = a."leaseId" AND r.type = 'lease-released'
          JOIN "Log" d ON d."leaseId" = a."leaseId" AND d.type = 'lease-destroyed'
          WHERE a.type = 'lease-activated'`;
        console.log(`round ${round}: mean ms activated → release asked → released → destroyed`, phases[0]);
        monitoring = false;
        await monitor;
        unsubscribe();
        expect(violations).toEqual([]);
        const leases = await h.db.prisma.lease.findMany({ orderBy: { acquiredAt: 'asc' } });
        expect(leases.every((l) => l.statusReason === 'command' && l.acquiredAt !== null)).toBe(true);
        expect(await h.db.prisma.resource.count()).toBeLessThanOrEqual(10);
        // Replayed in commit order (events are published after commit): a lease takes its resource
        // when it is acquired or activated and gives it back only once destroyed.
        const resourceOf = new Map(leases.map((l) => [l.id, l.resourceId!]));
        const holder = new Map<number, number>();
        for (const event of events.events) {
          if (event.kind !== 'lease') continue;
          const resourceId = resourceOf.get(event.leaseId);
          if (resourceId === undefined) continue;
          const current = holder.get(resourceId);
          if (event.status === 'ACQUIRED' || event.status === 'ACTIVE') {
            if (current !== undefined && current !== event.leaseId)
              violations.push(`resource ${resourceId}: lease ${event.leaseId} taken while ${current} held it`);
            holder.set(resourceId, event.leaseId);
          } else if (event.status === 'DESTROYED' && current === event.leaseId) holder.delete(resourceId);
        }
        expect(violations).toEqual([]);
        // Hand-off: from one lease's destroy to the next acquisition of the same resource.
        const byResource = new Map<number, typeof leases>();
        for (const lease of leases)
          byResource.set(lease.resourceId!, [...(byResource.get(lease.resourceId!) ?? []), lease]);
        const handOffs: number[] = [];
        for (const list of byResource.values())
          for (let i = 1; i < list.length; i++)
            handOffs.push(list[i]!.acquiredAt!.getTime() - list[i - 1]!.destroyedAt!.getTime());
        handOffs.sort((a, b) => a - b);
        const at = (q: number) => handOffs[Math.min(handOffs.length - 1, Math.floor(q * handOffs.length))];
        // Measured, not asserted (timestamps are taken when a transaction starts, so this is approximate).
        console.log(`round ${round}: hand-off destroyed → next acquired: median ${at(0.5)} ms, p95 ${at(0.95)} ms`);
        expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: { not: null } } })).toBe(0);
      } finally {
        monitoring = false;
        await stop();
      }
    }, 150_000);
  }
});
