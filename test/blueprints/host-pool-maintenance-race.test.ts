import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { BlueprintImplementation } from '../../src/blueprints/implementation.js';
import { hostPool } from '../../src/blueprints/host-pool.js';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import { bareAllocatorDeps, createHarness, queueIdOf, unwrap, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A binding put in maintenance while a pass builds a host on it: the pass read the blueprint's
// config before the change, so it may build on the binding the change takes out of service. The
// host it builds is never left undrained: a build in flight commits before the change drains (the
// change waits for the blueprint's build turn), and a build that reads the config before the change
// and builds after it is refused. PostgreSQL only: the change and the pass need two connections.

describePostgres('a binding put in maintenance while a pass builds on it', () => {
  let h: Harness;
  /** Awaited once, inside the pass, by the next call of the hook it is set for. */
  const pauses: { canAllocateNow?: () => Promise<void>; allocateResource?: () => Promise<void> } = {};
  const take = (hook: keyof typeof pauses) => {
    const pause = pauses[hook];
    delete pauses[hook];
    return pause?.();
  };
  const pausing: BlueprintImplementation = {
    ...(hostPool as unknown as BlueprintImplementation),
    key: 'pausing-pool',
    async canAllocateNow(blueprint, lease, queries) {
      await take('canAllocateNow');
      return hostPool.canAllocateNow(blueprint as never, lease, queries);
    },
    async allocateResource(blueprint, lease, queries) {
      await take('allocateResource');
      return hostPool.allocateResource(blueprint as never, lease, queries);
    },
  };
  beforeAll(async () => {
    h = await createHarness('postgresql', { poolSize: 8, implementations: [pausing] });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());

  const config = (maintenance: boolean) => ({
    services: [{ name: 'build', bindings: [{ name: 'h1', address: '10.0.0.1', port: 22, maintenance }] }],
  });
  /** A pause the test ends: `reached` resolves when the pass gets there. */
  const gate = () => {
    let reach!: () => void;
    let open!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { reached, open, pause: async () => (reach(), await opened) };
  };
  /** Transactions waiting for a lock now (the blueprint change waiting for the build turn). */
  const waitingForLocks = async () => {
    const [row] = await h.db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return row!.n;
  };

  async function setUp() {
    const blueprint = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'pausing-pool',
        config: config(false),
      }),
    );
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'host' }));
    const queueId = await queueIdOf(h, 'host');
    const pass = () => runSchedulingPass(bareAllocatorDeps(h), queueId);
    return { blueprint, lease, pass };
  }
  /** No host of the blueprint is live and out of drain on the binding in maintenance. */
  const undrained = () =>
    h.db.prisma.resource.count({ where: { status: { in: ['PENDING', 'ACTIVE'] }, drainingAt: null } });

  it('a build in flight commits first, and the change drains what it built', async () => {
    const { blueprint, lease, pass } = await setUp();
    const building = gate();
    pauses.allocateResource = building.pause;
    const passing = pass();
    await building.reached;
    // The pass holds the blueprint's build turn: the change waits for it.
    const changing = h.services.blueprints.update(h.system, blueprint.id, { config: config(true) });
    await Promise.race([changing, waitFor(async () => (await waitingForLocks()) > 0)]);
    building.open();
    await passing;
    unwrap(await changing);
    const built = await h.db.prisma.resource.findMany();
    expect(built).toHaveLength(1);
    expect(built[0]!.drainedForMaintenance).toBe(true);
    expect(await undrained()).toBe(0);
    // The lease got the host before the change: it runs on, as on any host drained under it.
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).resourceId).toBe(built[0]!.id);
  });

  it('a build on the config read before the change is refused after it, and the lease is not served there', async () => {
    const { blueprint, lease, pass } = await setUp();
    const looking = gate();
    pauses.canAllocateNow = looking.pause;
    const passing = pass();
    await looking.reached;
    // The change commits while the pass holds the config it read before it, not yet the build turn.
    try {
      unwrap(await h.services.blueprints.update(h.system, blueprint.id, { config: config(true) }));
    } finally {
      looking.open();
    }
    await passing;
    expect(await h.db.prisma.resource.count()).toBe(0);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('PENDING');
    // The next pass reads the new config: nothing to build on, the lease waits.
    await pass();
    expect(await h.db.prisma.resource.count()).toBe(0);
  });
});
