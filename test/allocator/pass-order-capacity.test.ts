import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import {
  bareAllocatorDeps,
  createHarness,
  queueIdOf,
  startWaitingForTurn,
  unwrap,
  withTurnHeld,
  type Harness,
} from '../support/allocator-harness.js';
import { Prng, seedFromEnv } from '../support/prng.js';
import { askFor, randomOwners, referenceGrants, type Asked } from './pass-order-reference.js';

// The randomized order check of pass-order.test.ts, for the pass that capacity frees under: a first
// pass leaves leases waiting (their patient waits record the capacity epoch, the rest queue behind
// them), more leases arrive, and room for more resources commits while the next pass waits for its
// turn. That pass's epoch is the first's (its turn read the job's mark before the change), so it
// refuses the waits of that epoch without a try, until a view shows the change; from there on the
// pass, and the one right after it if it stopped, must grant what the reference greedy grants, in
// its order, with the owners' leases from the first pass counted. Found by the model check with
// process kills: a lease queued behind a skipped one was never tried. Needs a second connection
// to hold the turn: PostgreSQL only.

const AGING_MS = 60_000;
const ROUNDS = Number(process.env['PASS_ORDER_ROUNDS'] ?? 20);
const seed = seedFromEnv('PASS_ORDER_SEED');

describePostgres('pass order when capacity frees as the pass takes its turn', () => {
  let h: Harness;
  let offsetMs = 0;
  let frozen: number | null = null;
  beforeAll(async () => {
    h = await createHarness('postgresql', {
      allocator: { agingIntervalMs: AGING_MS, clock: () => new Date(frozen ?? Date.now() + offsetMs) },
    });
  });
  afterAll(() => h.dispose());

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: the passes after the change grant in the reference greedy's order (seed ${seed + round})`, async () => {
      const rng = new Prng(seed + round);
      frozen = null;
      offsetMs = 0;
      await h.reset();
      const before = { a: rng.int(1, 3), b: rng.int(1, 2) };
      const after = { a: before.a + rng.int(1, 4), b: before.b + rng.int(0, 2) };
      const blueprints: Record<string, number> = {};
      const config = (label: string, maxResources: number) => ({ exclusive: true, label, maxResources });
      for (const label of ['a', 'b'] as const)
        blueprints[label] = unwrap(
          await h.services.blueprints.create(h.system, {
            name: `slots-${label}`,
            implementation: 'test',
            config: config(label, before[label]),
          }),
        ).id;
      const owners = await randomOwners(h, rng, { count: rng.int(2, 3), quotaChance: 0.2, maxQuota: 3 });
      const asked: Asked[] = [];
      /** `count` leases, each asked for up to `agedMs` ago. */
      const ask = async (count: number, agedMs: number) => {
        for (let i = 0; i < count; i++) {
          const owner = rng.pick([...owners.values()]);
          const priority = rng.int(-2, 3);
          const label = rng.chance(0.2) ? 'b' : 'a';
          offsetMs = -rng.int(0, agedMs);
          asked.push(await askFor(h, owner, label, priority));
        }
        offsetMs = 0;
      };
      await ask(rng.int(6, 14), 3 * AGING_MS);
      const queueId = await queueIdOf(h, 'test-slot');
      const deps = bareAllocatorDeps(h);
      const pass = () => runSchedulingPass(deps, queueId);
      frozen = Date.now();
      await pass();
      const lastLog = (await h.db.prisma.log.aggregate({ _max: { id: true } }))._max.id ?? 0n;
      frozen = null;
      // Newcomers: they have not aged.
      await ask(rng.int(1, 6), AGING_MS / 2);
      // One clock for the rest: every lease has arrived, and the epoch is not yet stale.
      frozen = Date.now();

      const leases = await h.db.prisma.lease.findMany({ include: { resource: { select: { blueprintId: true } } } });
      const live = new Map<number, number>();
      const used = { a: 0, b: 0 };
      for (const lease of leases.filter((l) => l.status === 'ACTIVE')) {
        live.set(lease.ownerId!, (live.get(lease.ownerId!) ?? 0) + 1);
        used[lease.resource!.blueprintId === blueprints['a'] ? 'a' : 'b']++;
      }
      const waiting = new Set(leases.filter((l) => l.status === 'PENDING').map((l) => l.id));
      const expected = referenceGrants(
        asked.filter((l) => waiting.has(l.id)),
        owners,
        { a: after.a - used.a, b: after.b - used.b },
        frozen,
        AGING_MS,
        live,
      );

      await withTurnHeld(h, queueId, async () => {
        const running = await startWaitingForTurn(h, pass);
        for (const label of ['a', 'b'] as const)
          if (after[label] !== before[label])
            unwrap(
              await h.services.blueprints.update(h.system, blueprints[label]!, { config: config(label, after[label]) }),
            );
        return running;
      });
      // A pass that stopped rather than grant out of order asked for the next one at once.
      for (let i = 0; i < 3; i++) await pass();
      const granted = await h.db.prisma.log.findMany({
        where: { type: 'lease-acquired', id: { gt: lastLog } },
        orderBy: { id: 'asc' },
      });
      expect(
        granted.map((l) => l.leaseId),
        JSON.stringify({ before, after, asked, owners: [...owners].map(([id, o]) => [id, o.weight, o.quota]) }),
      ).toEqual(expected);
      frozen = null;
    }, 60_000);
  }
});
