import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, type Harness } from '../support/allocator-harness.js';
import { contendWithHeldLease, twoSlotGang } from '../support/row-locks.js';

// Releasing a gang locks all its parts, then writes their commands, logs and jobs. A part's own
// update may hold that part's row and, ending the gang whole, write its siblings' jobs in its last
// statement. Had the release written the first part's job before it had the second part's lock,
// each would wait for the other: PostgreSQL broke that deadlock by failing the user's release
// (found by the 100,000-operation model run with kills). Here the part's update is played by a
// transaction holding the second part's row and then writing the first part's job.

describePostgres('releasing a gang while a part’s own update holds another part', () => {
  let h: Harness;
  // A deadlock would be retried (deadlocks.ts) and hide the fault: none may happen.
  const retries: unknown[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 4, deadlocks: { retried: (retry) => retries.push(retry) } });
  });
  afterAll(() => h.dispose());

  it('takes every part’s lock before writing anything: no deadlock, both commit', async () => {
    for (let round = 0; round < 5; round++) {
      await h.reset();
      const { first, second } = await twoSlotGang(h);
      const released = await contendWithHeldLease(
        h.db.prisma,
        second.id,
        () => h.services.leases.release(h.system, first.id),
        // As the part's update ending the gang whole: the sibling's job, in its last statement.
        (tx) => tx.$executeRaw`
          INSERT INTO "Job" (key, kind, "targetId", "runAt") VALUES (${`lease:${first.id}`}, 'LEASE_UPDATE', ${first.id}, now())
          ON CONFLICT (key) DO UPDATE SET "runAt" = EXCLUDED."runAt"`,
      );
      expect(released, `round ${round}`).toMatchObject({ ok: true });
      const commands = await h.db.prisma.command.count({ where: { kind: 'RELEASE' } });
      expect(commands).toBe(2);
      expect(retries, `round ${round}`).toEqual([]);
    }
  });
});
