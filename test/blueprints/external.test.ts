import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { requestIdOf } from '../../src/blueprints/external/protocol.js';
import { describeEachDatabase } from '../support/database.js';
import {
  createHarness,
  hostPoolConfig,
  logTypes,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';
import { startProvisioner, type ReferenceProvisioner } from '../support/reference-provisioner.js';

// The external blueprint end to end: the allocator's worker against the reference provisioner over
// real HTTP, on both databases: a hung provisioner costs one worker slot for a call timeout, on
// the embedded database too, and others are served meanwhile.

/** Waits for something the provisioner sees (its state lives in this process; no database polling). */
async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves once the resource is `status`, checked on its events (not by polling the database). */
async function waitForResource(h: Harness, resourceId: number, status: string, timeoutMs = 30_000) {
  let unsubscribe = () => {};
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`resource ${resourceId} is not ${status}`)), timeoutMs);
      unsubscribe = h.events.subscribe((event) => {
        if (event.kind === 'resource' && event.resourceId === resourceId && event.status === status) resolve();
      });
      void h.db.prisma.resource
        .findUniqueOrThrow({ where: { id: resourceId } })
        .then((r) => r.status === status && resolve(), reject);
    });
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
  return h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } });
}

describeEachDatabase('external blueprint', (kind) => {
  let h: Harness;
  let provisioner: ReferenceProvisioner;
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    await h.reset();
    provisioner = await startProvisioner();
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  });
  afterEach(async () => {
    // The worker first: stopping it abandons calls still waiting on a hung provisioner.
    await stopWorker();
    await provisioner.close();
  });

  const blueprint = (config: Record<string, unknown> = {}, name = 'cloud') =>
    h.services.blueprints
      .create(h.system, {
        name,
        implementation: 'external',
        config: {
          url: provisioner.url,
          pollIntervalMs: 20,
          maxPollIntervalMs: 200,
          callTimeoutMs: 2_000,
          leakSweepIntervalMs: 60_000,
          ...config,
        },
      })
      .then(unwrap);
  const request = (attributes: Record<string, unknown> = {}) =>
    h.services.leases.request(h.system, { resourceType: 'machine', attributes }).then(unwrap);
  // When boxes overlap, what each side saw and when: the provisioner's boxes and the rows' logs.
  const timeline = async () => {
    const boxes = provisioner
      .allBoxes()
      .map((b) => `${b.id} ${b.requestId} created ${b.createdAt} ready ${b.readyAt} deleted ${b.deletedAt}`);
    const logs = await h.db.prisma.log.findMany({ where: { resourceId: { not: null } }, orderBy: { id: 'asc' } });
    const rows = logs.map(
      (l) =>
        `${l.id} ${l.createdAt.getTime()} resource ${l.resourceId} ${l.type} lease ${l.leaseId} ${JSON.stringify(l.data)}`,
    );
    return [...boxes, ...rows].join('\n');
  };
  const resourceLogs = (resourceId: number, type: string) =>
    h.db.prisma.log.findMany({ where: { resourceId, type }, orderBy: { id: 'asc' } });

  it('a slow boot: the lease waits on the pending box and activates when it opens, polls backing off', async () => {
    provisioner.bootDelayMs = 800;
    const bp = await blueprint({ parameters: { image: 'ubuntu-24.04' } });
    const started = Date.now();
    const lease = await request({ cpus: 4 });
    expect((await waitForLease(h, lease.id, ['ACQUIRED', 'ACTIVE'])).status).toBe('ACQUIRED');
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);

    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: active.resourceId! } });
    expect(resource.attributes).toEqual({
      cpus: 4,
      memoryGb: 4,
      external: { requested: { cpus: 4 }, providerId: 'box-1' },
    });
    expect(provisioner.liveBoxes()).toMatchObject([
      {
        requestId: requestIdOf('drydock', bp.id, resource.id),
        requested: { cpus: 4 },
        parameters: { image: 'ubuntu-24.04' },
      },
    ]);
    // Every look is an allocate of the same request id; looks back off instead of hammering.
    const looks = provisioner.count('allocate');
    expect(looks).toBeGreaterThan(2);
    expect(looks).toBeLessThan(25);
    const types = await logTypes(h, { resourceId: resource.id });
    expect(types.filter((t) => t.startsWith('resource-'))).toEqual([
      'resource-allocated',
      'resource-setup-progress',
      'resource-activated',
    ]);
    expect(unwrap(await h.services.leases.interfaces(h.system, lease.id))).toEqual({
      external: { id: 'box-1', cpus: 4, memoryGb: 4 },
      fencing: { leaseId: lease.id, resourceId: resource.id, fence: 1 },
    });
  });

  it('destroys the box at the provisioner when its resource is released', async () => {
    await blueprint();
    const lease = await request();
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    unwrap(await h.services.resources.release(h.system, active.resourceId!));
    await waitForLease(h, lease.id, ['DESTROYED']);
    await until(() => provisioner.liveBoxes().length === 0, 'the box to be deleted');
    const resource = await waitForResource(h, active.resourceId!, 'DESTROYED');
    expect(resource.status).toBe('DESTROYED');
    expect(provisioner.count('delete', 204)).toBe(1);
    const progress = await resourceLogs(resource.id, 'resource-setup-progress');
    expect(progress.map((l) => (l.data as { message: string }).message)).toContain('provisioner box box-1 destroyed');
  });

  it('a box that vanished at the provisioner breaks its resource and lease at the next health check', async () => {
    await blueprint();
    const lease = await request();
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    provisioner.liveBoxes()[0]!.deletedAt = Date.now();
    await h.services.worker.runUpdate('resource', active.resourceId!);
    const broken = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(broken.statusReason).toBe('resource-broken');
    const why = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    expect((why.data as { message: string }).message).toBe(
      `resource ${active.resourceId} broke: the provisioner no longer knows box box-1`,
    );
  });

  it('a hung provisioner times out and retries; a host-pool lease meanwhile is granted at once', async () => {
    await blueprint({ callTimeoutMs: 1_500 });
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: hostPoolConfig(1),
      }),
    );
    provisioner.hang.add('allocate');
    const stuck = await request();
    await until(() => provisioner.count('allocate', 'hung') === 1, 'the allocate to hang');

    const asked = Date.now();
    const host = unwrap(await h.services.leases.request(h.system, { resourceType: 'host' }));
    await waitForLease(h, host.id, ['ACTIVE']);
    // Well inside the hung call's deadline: nothing waited for it.
    expect(Date.now() - asked).toBeLessThan(750);

    const pending = await waitForLease(h, stuck.id, ['ACQUIRED']);
    await until(() => provisioner.count('allocate', 'hung') >= 2, 'a second look after the timeout', 15_000);
    const failures = await resourceLogs(pending.resourceId!, 'resource-activation-failed-temporarily');
    expect(failures[0]?.data).toEqual({ message: 'provisioner POST /allocate did not answer within 1500 ms' });

    provisioner.hang.clear();
    await waitForLease(h, stuck.id, ['ACTIVE'], 15_000);
    // The hung call had already created the box: the look that got an answer found it.
    expect(provisioner.liveBoxes()).toHaveLength(1);
  });

  it('over quota: retries with backoff, never breaks the lease, and succeeds once quota frees', async () => {
    provisioner.quota = 1;
    await blueprint();
    const first = await request();
    const holding = await waitForLease(h, first.id, ['ACTIVE']);
    const second = await request();
    await until(() => provisioner.count('allocate', 429) >= 6, 'six over-quota answers');

    const refused = provisioner.calls.filter((c) => c.status === 429).map((c) => c.at);
    const gaps = refused.slice(1).map((at, i) => at - refused[i]!);
    // Each retry waits at least its backoff's fixed half (base 20 ms, doubling): a busy machine can
    // only make the gaps longer, so this holds under load, and a fixed short retry would fail it.
    const floor = (attempt: number) => Math.min(500, 20 * 2 ** (attempt - 1)) / 2;
    gaps.slice(0, 5).forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(floor(i + 1) - 2));
    const waiting = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: second.id } });
    expect(waiting.status).toBe('ACQUIRED');
    const failures = await resourceLogs(waiting.resourceId!, 'resource-activation-failed-temporarily');
    expect(failures[0]?.data).toEqual({
      message: 'provisioner POST /allocate answered 429 over-quota: quota of 1 boxes reached',
    });

    // Quota frees when the first box goes.
    unwrap(await h.services.resources.release(h.system, holding.resourceId!));
    const active = await waitForLease(h, second.id, ['ACTIVE'], 15_000);
    expect(active.resourceId).toBe(waiting.resourceId);
    expect(await logTypes(h, { leaseId: second.id })).not.toContain('lease-broken');
    expect(provisioner.liveBoxes().map((b) => b.id)).toEqual(['box-2']);
  });

  it('a box that fails at boot breaks its resource and its lease, with the provisioner message logged', async () => {
    provisioner.bootDelayMs = 50;
    provisioner.failBoot = 'kernel panic: no init found';
    await blueprint();
    const lease = await request();
    const destroyed = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(destroyed.statusReason).toBe('allocation-failed');

    const [resource] = await h.db.prisma.resource.findMany();
    const broken = await resourceLogs(resource!.id, 'resource-broken');
    expect(broken.map((l) => l.data)).toEqual([
      { message: 'provisioner box box-1 failed: kernel panic: no init found', reason: 'activation-failed' },
    ]);
    const leaseBroken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    expect(leaseBroken.data).toMatchObject({
      reason: 'allocation-failed',
      message: `the provisioner failed 1 box(es) built for this lease; see the log of resource ${resource!.id}`,
    });
    // One box only (the lease did not buy another), and the failed box was deleted by the teardown.
    await until(() => provisioner.liveBoxes().length === 0, 'the failed box to be deleted');
    expect(provisioner.count('allocate', 201)).toBe(1);
  });

  it('a refused allocate breaks the resource and its lease with the refusal', async () => {
    provisioner.failAllocate = 'unknown image "nonesuch"';
    await blueprint({ parameters: { image: 'nonesuch' } });
    const lease = await request();
    await waitForLease(h, lease.id, ['DESTROYED']);
    const [resource] = await h.db.prisma.resource.findMany();
    const broken = await resourceLogs(resource!.id, 'resource-broken');
    expect(broken[0]?.data).toMatchObject({
      message: 'provisioner POST /allocate answered 422 invalid-request: unknown image "nonesuch"',
    });
    expect(await logTypes(h, { leaseId: lease.id })).toContain('lease-broken');
  });

  it('the leak sweep destroys boxes no live row knows, but not one whose allocate is in flight', async () => {
    provisioner.hang.add('allocate');
    const bp = await blueprint({ leakSweepIntervalMs: 100, leakGraceMs: 1_500, callTimeoutMs: 10_000 });
    const lease = await request();
    await until(() => provisioner.count('allocate', 'hung') === 1, 'the allocate to hang');
    const inFlight = provisioner.liveBoxes()[0]!;
    // Past the grace period: only its live row protects it now.
    await new Promise((resolve) => setTimeout(resolve, 1_600));

    const leaked = provisioner.inject(requestIdOf('drydock', bp.id, 999), 5_000);
    const young = provisioner.inject(requestIdOf('drydock', bp.id, 998), 0);
    const otherBlueprint = provisioner.inject(requestIdOf('drydock', bp.id + 1, 999), 5_000);
    const otherInstallation = provisioner.inject(requestIdOf('elsewhere', bp.id, 999), 5_000);
    await until(() => leaked.deletedAt !== null, 'the leaked box to be swept');
    const listed = provisioner.count('list');
    await until(() => provisioner.count('list') >= listed + 2, 'two more sweeps');

    expect(inFlight.deletedAt).toBeNull();
    // Never swept while younger than the grace period (at the end of a very slow run it may be older).
    expect(young.deletedAt === null || young.deletedAt - young.createdAt >= 1_500).toBe(true);
    expect(leaked.deletedAt! - young.createdAt).toBeLessThan(1_500);
    expect(otherBlueprint.deletedAt).toBeNull();
    expect(otherInstallation.deletedAt).toBeNull();
    const swept = await h.db.prisma.log.findMany({ where: { blueprintId: bp.id, type: 'blueprint-maintenance' } });
    expect(swept.map((l) => l.data)).toEqual([
      {
        message: `destroyed leaked provisioner box ${leaked.id}`,
        providerId: leaked.id,
        requestId: leaked.requestId,
        resourceId: 999,
      },
    ]);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: lease.id } })).status).toBe('ACQUIRED');
  });

  it('a mystery box converges: open a box, too small, open another, lease it; one box opening at a time', async () => {
    provisioner.mysteryBox = true;
    provisioner.boxes = [{ cpus: 2 }, { cpus: 8 }];
    provisioner.bootDelayMs = 150;
    await blueprint({ mysteryBox: true });
    const lease = await request({ cpus: 4 });
    const active = await waitForLease(h, lease.id, ['ACTIVE'], 20_000);

    const resources = await h.db.prisma.resource.findMany({ orderBy: { id: 'asc' } });
    expect(resources.map((r) => (r.attributes as { cpus: number }).cpus)).toEqual([2, 8]);
    expect(active.resourceId).toBe(resources[1]!.id);
    expect(provisioner.count('allocate', 201)).toBe(2);
    expect(provisioner.maxPending(), await timeline()).toBe(1);
    // The seed's steps: allocate, refused on the pending box, wait; the box opens too small; allocate again.
    const log = await h.db.prisma.log.findMany({ where: { leaseId: lease.id }, orderBy: { id: 'asc' } });
    expect(log.filter((l) => l.type === 'resource-allocated').map((l) => l.resourceId)).toEqual(
      resources.map((r) => r.id),
    );
    expect(
      log.filter((l) => l.type === 'lease-acquired' || l.type === 'lease-activated').map((l) => l.resourceId),
    ).toEqual([resources[1]!.id, resources[1]!.id]);
    const waits = log.filter((l) => l.type === 'waiting-for-resources');
    expect(waits.map((l) => (l.data as { reason: string }).reason)).toContain('waiting-for-resource-activation');
    const firstOpened = await h.db.prisma.log.findFirstOrThrow({
      where: { resourceId: resources[0]!.id, type: 'resource-activated' },
    });
    const secondAllocated = log.find((l) => l.type === 'resource-allocated' && l.resourceId === resources[1]!.id)!;
    expect(secondAllocated.id > firstOpened.id).toBe(true);
  });

  // A race: run it several times over (each round a fresh database and provisioner).
  for (let round = 1; round <= 5; round++) {
    it(`mystery boxes for several leases at once: never two opening together, every lease served (round ${round})`, async () => {
      provisioner.mysteryBox = true;
      provisioner.boxes = [{ cpus: 2 }, { cpus: 8 }];
      provisioner.bootDelayMs = 60;
      await blueprint({ mysteryBox: true });
      const leases = await Promise.all([1, 2, 3, 4].map(() => request({ cpus: 4 })));
      const active = await Promise.all(leases.map((l) => waitForLease(h, l.id, ['ACTIVE'], 30_000)));
      expect(new Set(active.map((l) => l.resourceId)).size).toBe(4);
      expect(provisioner.maxPending(), await timeline()).toBe(1);
      expect(provisioner.count('allocate', 201), await timeline()).toBe(5);
    });
  }
});
