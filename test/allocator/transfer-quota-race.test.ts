import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createServices, ensurePrincipal, type Services } from '../../src/services/index.js';
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

// A lease handed to a principal and a scheduling pass granting that principal a lease of the same
// type both count its quota: the transfer under the type's turn, which the pass holds while it
// grants. Run as a race, with several allocators serving the requests while the hand-overs
// commit: only real concurrent connections show it, so PostgreSQL only.
const ROUNDS = Number(process.env['RACE_ROUNDS'] ?? 2) * 6;
const QUOTA = 2;

describePostgres('transferLease against concurrent passes, under the recipient’s quota', () => {
  let h: Harness;
  let allocators: Services[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 24 });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  const liveOf = async (ownerId: number) =>
    h.db.prisma.lease.count({ where: { ownerId, resourceType: 'host', status: { in: ['ACQUIRED', 'ACTIVE'] } } });

  for (let round = 1; round <= ROUNDS; round++) {
    it(`never takes the recipient past its quota, whichever commits first (round ${round})`, async () => {
      allocators = Array.from({ length: 3 }, (_, i) =>
        createServices({
          db: h.db,
          events: new RecordingEvents(),
          workerId: `allocator-${i}`,
          implementations: [createTestBlueprint(h.control)],
          allocator: fastAllocator,
          worker: fastWorker,
        }),
      );
      const workers = allocators.map((allocator) => allocator.worker.start({ concurrency: 3 }));
      const violations: string[] = [];
      let monitoring = true;
      try {
        const pool = unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'pool',
            implementation: 'host-pool',
            config: hostPoolConfig(8),
          }),
        );
        const giver = await ensurePrincipal(h.db, { name: 'giver', kind: 'USER' });
        const taker = await ensurePrincipal(h.db, { name: 'taker', kind: 'USER' });
        // Both may lease from the pool, so a hand-over is refused only for the quota.
        await h.db.prisma.authorization.createMany({
          data: [giver, taker].map((who) => ({
            blueprintId: pool.id,
            principalId: who.principalId,
            blueprintState: 'AUTHORIZED' as const,
          })),
        });
        unwrap(
          await h.services.scheduling.setQuota(h.system, {
            principalId: taker.principalId,
            resourceType: 'host',
            maxLeases: QUOTA,
          }),
        );
        const given = await Promise.all(
          Array.from({ length: 3 }, () => h.services.leases.request(giver, { resourceType: 'host' }).then(unwrap)),
        );
        await expect
          .poll(() => h.db.prisma.lease.count({ where: { ownerId: giver.principalId, status: 'ACTIVE' } }), {
            timeout: 30_000,
          })
          .toBe(3);

        const monitor = (async () => {
          while (monitoring) {
            const live = await liveOf(taker.principalId);
            if (live > QUOTA) violations.push(`the taker held ${live} live host leases`);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        })();
        // An administrator hands them over, so a refusal says why (the owner is told less). The
        // hand-overs and the taker's own requests (each asks for a pass) start together, on
        // the allocators' services, so transfers and passes interleave across connections.
        const [transfers, requested] = await Promise.all([
          // A request returns before its pass runs: each round starts the hand-overs a little
          // later than the last, so that passes win some rounds and hand-overs others.
          new Promise((resolve) => setTimeout(resolve, ((round - 1) % 6) * 3)).then(() =>
            Promise.all(
              given.map((lease, i) => allocators[i % 3]!.leases.transfer(h.system, lease.id, taker.principalId)),
            ),
          ),
          Promise.all(
            Array.from({ length: 3 }, (_, i) =>
              allocators[i % 3]!.leases.request(taker, { resourceType: 'host' }).then(unwrap),
            ),
          ),
        ]);
        for (const transfer of transfers) {
          if (!transfer.ok)
            expect(transfer.error).toMatchObject({
              kind: 'ConflictError',
              message: expect.stringContaining('at its quota'),
            });
        }
        const handedOver = transfers.filter((transfer) => transfer.ok).length;
        // Settled: the taker is at its quota, and each request it made is granted or waits on the quota.
        await expect
          .poll(
            async () => {
              const rows = await h.db.prisma.lease.findMany({ where: { id: { in: requested.map((l) => l.id) } } });
              const settled = rows.every(
                (row) => row.status === 'ACTIVE' || (row.blocker as { reason?: string } | null)?.reason === 'quota',
              );
              return settled && (await liveOf(taker.principalId)) >= QUOTA;
            },
            { timeout: 30_000 },
          )
          .toBe(true);
        monitoring = false;
        await monitor;
        expect(violations).toEqual([]);
        expect(await liveOf(taker.principalId)).toBe(QUOTA);
        const granted = await h.db.prisma.lease.count({
          where: { id: { in: requested.map((l) => l.id) }, status: 'ACTIVE' },
        });
        console.log(`round ${round}: ${handedOver} handed over, ${granted} granted by a pass`);
        expect(handedOver + granted).toBe(QUOTA);
        // What was not handed over stayed the giver's, live.
        expect(await liveOf(giver.principalId)).toBe(3 - handedOver);
      } finally {
        monitoring = false;
        await Promise.all(workers.map((worker) => worker.stop()));
      }
    }, 60_000);
  }
});
