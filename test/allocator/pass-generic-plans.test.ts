import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { rawTransaction } from '../../src/db/raw-sql.js';
import { describePostgres } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';

// A pass's statements (its turn, the heads' read, the pool's view, the grant write) are planned
// once per connection, as their plans were made to be (queue-heads-plan.test.ts judges the heads'
// generic plan): the pass's transaction runs generic plans from its first statement on. Left to
// PostgreSQL's own choice, they were planned anew on many runs, a plan costing more than the run.
// PostgreSQL only: PGlite has no pg_prepared_statements counts of its own to read here.

describePostgres("a scheduling pass's statements", () => {
  let h: Harness;
  beforeAll(async () => {
    // One connection: every pass below runs where the plans are then counted.
    h = await createHarness('postgresql', { poolSize: 1 });
  });
  afterAll(() => h.dispose());

  it('run their generic plans from the first pass on', async () => {
    unwrap(await h.services.blueprints.create(h.system, { name: 'roomy', implementation: 'test', config: {} }));
    const deps = bareAllocatorDeps(h, { queueTypes: new Map(), passDemands: new Map() });
    const passes = 8;
    let queueId = 0;
    for (let i = 0; i < passes; i++) {
      const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
      queueId ||= await queueIdOf(h, 'test-slot');
      await runSchedulingPass(deps, queueId);
      expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('ACTIVE');
      unwrap(await h.services.leases.release(h.system, lease.id));
    }
    const counted = await rawTransaction(
      h.db,
      10_000,
      (tx) =>
        tx.$queryRaw<{ statement: string; generic: number; custom: number }[]>`
        SELECT statement, generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements
        WHERE statement NOT LIKE '%pg_prepared_statements%'`,
    );
    const of = (marker: string) => counted.filter((s) => s.statement.includes(marker));
    const passStatements = {
      turn: of('UPDATE "ResourceTypeQueue" q SET'),
      heads: of('WITH RECURSIVE shapes'),
      view: of("json_build_object('blueprints'"),
      grants: of('WITH ORDINALITY AS q(lease, resource, n)'),
    };
    for (const [name, statements] of Object.entries(passStatements)) {
      expect(statements.length, name).toBeGreaterThan(0);
      for (const { generic, custom } of statements)
        expect({ name, custom, planned: generic > 0 }).toEqual({ name, custom: 0, planned: true });
    }
    // Every pass ran the heads' read: all of its runs were generic.
    expect(passStatements.heads.reduce((sum, s) => sum + s.generic, 0)).toBe(passes);
  });
});
