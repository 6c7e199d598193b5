import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { ensurePrincipal } from '../../src/services/index.js';
import type { DatabaseKind } from '../../src/db/database.js';
import { describeEachDatabase, describePostgres } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { sideWindowBlueprints, type SideWindowControl } from '../support/side-window.js';
import { waitFor } from '../support/wait.js';

// Capacity that frees while a pass runs, after a lease of other attributes ahead was refused it
// and a grant has come between: the lease ahead could be served now only out of order, so the
// capacity waits for the next pass, if the type's capacity mark says that capacity was freed
// since the refusal (a release, a destruction). Capacity a blueprint opens on its own announces
// nothing: a later lease of other attributes may take it, as a later pass would give it too; a
// hold there would hold it in every pass for as long as the lease ahead waited.

function scenario(kind: DatabaseKind, marked: boolean) {
  let h: Harness;
  const control: SideWindowControl = { open: false, refusals: 0, onSide: null };
  beforeAll(async () => {
    h = await createHarness(kind, { implementations: sideWindowBlueprints(control, 'marked-window') });
  });
  afterAll(() => h.dispose());
  beforeEach(() => Object.assign(control, { open: false, refusals: 0, onSide: null }));

  return async () => {
    await h.reset();
    for (const implementation of ['marked-window', 'marked-window-side'])
      unwrap(await h.services.blueprints.create(h.system, { name: implementation, implementation, config: {} }));
    if (marked)
      // What a release committing on another connection writes: a new mark on the type's pass job.
      control.onSide = async () => {
        await h.db.prisma.$executeRaw`
          UPDATE "Job" SET "capacityMark" = pg_current_xact_id()::text::bigint WHERE kind = 'SCHEDULING_PASS'`;
      };
    const [a, b, c] = await Promise.all(
      ['owner-a', 'owner-b', 'owner-c'].map((name) => ensurePrincipal(h.db, { name, kind: 'USER', isAdmin: true })),
    );
    const ask = async (actor: typeof a, priority: number, attributes: Record<string, unknown>) =>
      unwrap(await h.services.leases.request(actor!, { resourceType: 'marked-window', priority, attributes })).id;
    // Policy order: a1 (refused: the window is shut), c1 (another shape, which a1 could never use:
    // its build opens the window), b1 (other attributes than a1's, which the window also serves).
    const a1 = await ask(a, 2, {});
    const c1 = await ask(c, 1, { side: true });
    const b1 = await ask(b, 0, { team: 'b' });
    const stop = h.services.worker.start({ concurrency: 1 }).stop;
    try {
      await waitFor(async () => (await h.db.prisma.lease.count({ where: { status: 'ACTIVE' } })) === 3);
    } finally {
      await stop();
    }
    const acquired = await h.db.prisma.log.findMany({ where: { type: 'lease-acquired' }, orderBy: { id: 'asc' } });
    const reasons = async (leaseId: number) =>
      (await h.db.prisma.log.findMany({ where: { type: 'waiting-for-resources', leaseId } })).map(
        (l) => (l.data as { reason: string }).reason,
      );
    return { a1, b1, c1, order: acquired.map((l) => l.leaseId), b1Reasons: await reasons(b1) };
  };
}

describePostgres('capacity announced freed while a pass runs, after a grant behind a lease of other attributes', () => {
  const run = scenario('postgresql', true);
  it('waits for the next pass, which serves the lease ahead first', async () => {
    const { a1, b1, c1, order, b1Reasons } = await run();
    expect(order).toEqual([c1, a1, b1]);
    expect(b1Reasons).toContain('reserved');
  });
});

describeEachDatabase('capacity a blueprint opens on its own while a pass runs, after a grant', (kind) => {
  const run = scenario(kind, false);
  it('goes to the lease of other attributes tried after it: nothing says it freed since the refusal', async () => {
    const { a1, b1, c1, order, b1Reasons } = await run();
    expect(order).toEqual([c1, b1, a1]);
    expect(b1Reasons).not.toContain('reserved');
  });
});
