import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import {
  createHarness,
  noJobDue,
  resourcesBuilt,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';
import { createGitFixtures, git, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';
import { startProvisioner, type ReferenceProvisioner } from '../support/reference-provisioner.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { waitFor } from '../support/wait.js';
import { createWorkingCopyStack } from './working-copy-stack.js';

// Warm pools of blueprints whose resources take a while to open, on PostgreSQL: boxes of the
// reference provisioner and git working copies. A lease is granted on a box or copy the pool has
// opened, without one being built for it; the pool refills after leases take its resources and
// never builds past the limit. Last, two allocator processes fill one pool without double-building.

describePostgres('warm pools of built resources', () => {
  let h: Harness;
  let stopWorker: (() => Promise<void>) | null = null;
  beforeAll(async () => {
    h = await createHarness('postgresql', { transports: { allowLocal: true } });
  });
  afterAll(() => h.dispose());
  beforeEach(() => h.reset());
  afterEach(async () => {
    await stopWorker?.();
    stopWorker = null;
  });
  const start = () => {
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  };

  const live = { in: ['ACQUIRED' as const, 'ACTIVE' as const] };
  const idle = (blueprintId: number) =>
    h.db.prisma.resource.findMany({
      where: { blueprintId, status: 'ACTIVE', leases: { none: { status: live } } },
      orderBy: { id: 'asc' },
    });
  const notDestroyed = (blueprintId: number) =>
    h.db.prisma.resource.count({ where: { blueprintId, status: { not: 'DESTROYED' } } });
  /** The lease never waited for a resource to open: it was granted on one that was open. */
  const grantedOnOpen = async (leaseId: number) => {
    const types = (await h.db.prisma.log.findMany({ where: { leaseId }, orderBy: { id: 'asc' } })).map((l) => l.type);
    expect(types).not.toContain('waiting-for-resources');
    expect(types).toContain('lease-activated');
  };

  describe('with the reference provisioner', () => {
    let provisioner: ReferenceProvisioner;
    beforeEach(async () => {
      provisioner = await startProvisioner();
      // Boxes that take a while to boot: a lease that had to wait for one would show it.
      provisioner.bootDelayMs = 300;
      start();
    });
    afterEach(async () => {
      await stopWorker?.();
      stopWorker = null;
      await provisioner.close();
    });

    it('fills to minReady, grants on a ready box, refills, and stops at the limit', async () => {
      const bp = unwrap(
        await h.services.blueprints.create(h.system, {
          name: 'cloud',
          implementation: 'external',
          config: { url: provisioner.url, pollIntervalMs: 20, maxPollIntervalMs: 200, leakSweepIntervalMs: 60_000 },
          resourceLimit: 3,
          minReady: 2,
        }),
      );
      const warm = await waitFor(async () => {
        const ready = await idle(bp.id);
        return ready.length === 2 && (await noJobDue(h)) ? ready : null;
      }, 30_000);
      expect(provisioner.allBoxes()).toHaveLength(2);
      expect(warm.map((r) => r.name)).toEqual(['cloud warm box', 'cloud warm box']);

      const requested = unwrap(await h.services.leases.request(h.system, { resourceType: 'machine' }));
      const first = await waitForLease(h, requested.id, ['ACTIVE']);
      expect(warm.map((r) => r.id)).toContain(first.resourceId);
      await grantedOnOpen(first.id);

      // Refilled: one more box, up to the limit of three.
      await waitFor(async () => (await idle(bp.id)).length === 2 && (await noJobDue(h)), 30_000);
      expect(provisioner.allBoxes()).toHaveLength(3);

      // Two more leases take the two ready boxes; the limit leaves the pool empty, not over it.
      const more = await Promise.all(
        [0, 1].map(() => h.services.leases.request(h.system, { resourceType: 'machine' }).then(unwrap)),
      );
      for (const lease of more) await grantedOnOpen((await waitForLease(h, lease.id, ['ACTIVE'])).id);
      await waitFor(() => noJobDue(h), 30_000);
      expect(await idle(bp.id)).toEqual([]);
      expect(await notDestroyed(bp.id)).toBe(3);
      expect(await resourcesBuilt(h, bp.id)).toBe(3);
      expect(provisioner.allBoxes()).toHaveLength(3);

      // A box released goes (a lease that ends keeps it): the pool builds one in its place.
      unwrap(await h.services.resources.release(h.system, first.resourceId!));
      await waitForLease(h, first.id, ['DESTROYED']);
      await waitFor(async () => (await idle(bp.id)).length === 1 && (await noJobDue(h)), 30_000);
      expect(provisioner.liveBoxes()).toHaveLength(3);
      expect(await resourcesBuilt(h, bp.id)).toBe(4);
    });
  });

  describe('with working copies', () => {
    let fixtures: GitFixtures;
    let app: GitOrigin;
    beforeAll(async () => {
      fixtures = await createGitFixtures();
      app = await fixtures.origin('app');
    });
    afterAll(() => fixtures.dispose());
    beforeEach(start);

    it('fills to minReady copies, grants on a ready copy, refills, and stops at the limit', async () => {
      const stack = await createWorkingCopyStack(h, fixtures.root, { resourceLimit: 2 });
      const repositories = { src: { url: app.url } };
      // A copy's warm attributes name its repositories: without them nothing could be cloned.
      const missing = await h.services.blueprints.update(h.system, stack.copies.id, { minReady: 1 });
      expect(missing.ok ? null : missing.error).toMatchObject({
        kind: 'ValidationError',
        path: ['warmAttributes', 'repositories'],
      });
      unwrap(
        await h.services.blueprints.update(h.system, stack.copies.id, {
          minReady: 1,
          warmAttributes: { repositories },
        }),
      );
      const [warm] = await waitFor(async () => {
        const ready = await idle(stack.copies.id);
        return ready.length === 1 && (await noJobDue(h)) ? ready : null;
      }, 60_000);

      const request = () =>
        h.services.leases
          .request(h.system, { resourceType: 'working-copy', attributes: { repositories } })
          .then(unwrap);
      const first = await waitForLease(h, (await request()).id, ['ACTIVE'], 60_000);
      expect(first.resourceId).toBe(warm!.id);
      await grantedOnOpen(first.id);
      expect(await git(join(stack.root, String(warm!.id), 'src'), 'rev-parse', 'HEAD')).toBe(app.commits.main);

      // Refilled to one ready copy: two copies, the limit.
      const [second] = await waitFor(async () => {
        const ready = await idle(stack.copies.id);
        return ready.length === 1 && (await noJobDue(h)) ? ready : null;
      }, 60_000);
      expect(second!.id).not.toBe(warm!.id);
      const next = await waitForLease(h, (await request()).id, ['ACTIVE'], 60_000);
      expect(next.resourceId).toBe(second!.id);
      await grantedOnOpen(next.id);

      // The limit is reached: a third lease waits, and no third copy is built.
      const third = await request();
      await waitFor(async () => {
        const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: third.id } });
        return lease.status === 'PENDING' && lease.blocker !== null && (await noJobDue(h));
      }, 60_000);
      expect(await notDestroyed(stack.copies.id)).toBe(2);
      expect(await resourcesBuilt(h, stack.copies.id)).toBe(2);
      unwrap(await h.services.leases.release(h.system, first.id));
      expect((await waitForLease(h, third.id, ['ACTIVE'], 60_000)).resourceId).toBe(warm!.id);
    });
  });

  describe('across processes', () => {
    const workers: WorkerProcess[] = [];
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.kill()));
    });

    it('two allocator processes fill one pool to minReady, never both building the missing resources', async () => {
      // The test process only asks; both workers book every warm pool at start and serve grants.
      for (const id of ['warm-a', 'warm-b']) workers.push(await startWorkerProcess(h.db.url!, id));
      const bp = unwrap(
        await h.services.blueprints.create(h.system, {
          name: 'pool',
          implementation: 'host-pool',
          config: {
            services: [
              {
                name: 'build',
                bindings: Array.from({ length: 12 }, (_, i) => ({ name: `h${i}`, address: `10.0.1.${i}`, port: 22 })),
              },
            ],
          },
          minReady: 3,
        }),
      );
      await waitFor(async () => (await idle(bp.id)).length === 3 && (await noJobDue(h)), 30_000);
      const leases = await Promise.all(
        Array.from({ length: 6 }, () => h.services.leases.request(h.system, { resourceType: 'host' }).then(unwrap)),
      );
      await waitFor(
        async () =>
          (await h.db.prisma.lease.count({ where: { id: { in: leases.map((l) => l.id) }, status: 'ACTIVE' } })) === 6,
        30_000,
      );
      await waitFor(async () => (await idle(bp.id)).length === 3 && (await noJobDue(h)), 30_000);
      // Six leases on hosts of their own (a free binding is built before a host is shared), three
      // ready: one build more by either process would show as a fourth ready host.
      expect(await notDestroyed(bp.id)).toBe(9);
      expect(await resourcesBuilt(h, bp.id)).toBe(9);
    });
  });
});
