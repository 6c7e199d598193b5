import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { z } from 'zod';
import { PermanentFailure, TemporaryFailure } from '../../src/failures.js';
import { defineImplementation, type ActivationResult } from '../../src/blueprints/implementation.js';
import { waitFor } from '../support/wait.js';
import { describeEachDatabase } from '../support/database.js';
import {
  authorizeBlueprintOn,
  createHarness,
  logTypes,
  unwrap,
  waitForLease,
  type Harness,
} from '../support/allocator-harness.js';

// The hooks that run outside transactions: a resource that holds a lease of its own (as a working
// copy holds its host), lease setup, teardown before destroy, and periodic blueprint maintenance.

type Outcome = 'temporary' | 'permanent' | 'wait';

class StackControl {
  setupOutcomes: Outcome[] = [];
  teardownOutcomes: ('temporary' | 'permanent')[] = [];
  readonly setups: number[] = [];
  readonly teardowns: number[] = [];
  maintenanceRuns = 0;
  maintenanceFailures = 0;
}

function outcome(next: Outcome | undefined, what: string): ActivationResult | null {
  if (next === 'temporary') throw new TemporaryFailure(`${what}: temporary (test)`, 20);
  if (next === 'permanent') throw new PermanentFailure(`${what}: permanent (test)`);
  if (next === 'wait') return { status: 'wait', retryAfterMs: 20 };
  return null;
}

/** Resources built on a lease of a `test-slot`, one exclusive lease each. */
function stackBlueprint(control: StackControl) {
  return defineImplementation<{ maintenanceMs: number }>({
    key: 'stack',
    resourceType: 'stack',
    configSchema: z.object({ maintenanceMs: z.number().int().positive().default(60_000) }),
    canEverAllocate: () => true,
    canAllocateNow: async () => true,
    allocateResource: async (blueprint, lease) => ({
      name: `stack-for-${lease.id}`,
      attributes: {},
      slotLocks: [],
      activation: 'later',
    }),
    async activateResource(_blueprint, _resource, runtime) {
      const held = await runtime.leases.list();
      const base = held.at(-1) ?? (await runtime.leases.request({ resourceType: 'test-slot' }));
      if (base.status === 'BROKEN' || base.status === 'DESTROYED' || base.status === 'RELEASED')
        throw new PermanentFailure(`base lease ${base.id} is ${base.status}`);
      // Long on purpose: only the wake-up on the base lease's transition can make this quick.
      if (base.status !== 'ACTIVE') return { status: 'wait', retryAfterMs: 60_000 };
      await runtime.log('base is ready', { baseLeaseId: base.id });
      return { status: 'active', attributes: { baseLeaseId: base.id } };
    },
    canAcquireLeaseOn: async (_b, resource) => resource.status === 'ACTIVE',
    acquireLease: (_b, resource) => ({ slotLocks: [`stack.lease(${resource.id})`] }),
    async setupLease(_b, _resource, lease, runtime) {
      control.setups.push(lease.id);
      const verdict = outcome(control.setupOutcomes.shift(), `setup of lease ${lease.id}`);
      if (verdict) return verdict;
      await runtime.log('checked out', { step: 'checkout' });
      return { status: 'active' };
    },
    async teardownResource(_b, resource) {
      control.teardowns.push(resource.id);
      outcome(control.teardownOutcomes.shift(), `teardown of resource ${resource.id}`);
    },
    shouldAllocateSupplementalResource: () => true,
    maintenance: {
      intervalMs: (blueprint) => blueprint.config.maintenanceMs,
      async run(_blueprint, runtime) {
        control.maintenanceRuns++;
        if (control.maintenanceFailures > 0) {
          control.maintenanceFailures--;
          throw new Error('sweep failed (test)');
        }
        await runtime.log('swept', { live: (await runtime.resources(['ACTIVE'])).length });
      },
    },
  });
}

describeEachDatabase('hooks outside transactions', (kind) => {
  let h: Harness;
  let control: StackControl;
  let stopWorker: () => Promise<void>;
  beforeAll(async () => {
    control = new StackControl();
    h = await createHarness(kind, {
      implementations: [stackBlueprint(control)],
      allocator: { teardownAttempts: 3 },
    });
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    await h.reset();
    Object.assign(control, new StackControl());
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  });
  afterEach(() => stopWorker());

  async function blueprints(options: { authorize?: boolean; maintenanceMs?: number } = {}) {
    const base = unwrap(
      await h.services.blueprints.create(h.system, { name: 'base', implementation: 'test', config: {} }),
    );
    const stack = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'stack',
        implementation: 'stack',
        config: { maintenanceMs: options.maintenanceMs ?? 60_000 },
      }),
    );
    if (options.authorize ?? true) await authorizeBlueprintOn(h, stack.id, base.id);
    return { base, stack };
  }

  it('builds a resource on a lease it owns, woken by that lease (not by polling), and releases it on destroy', async () => {
    await blueprints();
    const started = Date.now();
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    expect(Date.now() - started).toBeLessThan(5_000);
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: active.resourceId! } });
    const baseLeaseId = (resource.attributes as { baseLeaseId: number }).baseLeaseId;
    const baseLease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: baseLeaseId } });
    expect(baseLease).toMatchObject({ status: 'ACTIVE', ownerResourceId: resource.id });
    const owner = await h.db.prisma.principal.findUniqueOrThrow({ where: { id: baseLease.ownerId! } });
    expect(owner).toMatchObject({ kind: 'BLUEPRINT', name: `blueprint:${resource.blueprintId}` });
    expect(await logTypes(h, { resourceId: resource.id })).toEqual(
      expect.arrayContaining(['resource-lease-requested', 'resource-setup-progress', 'resource-activated']),
    );
    expect(await logTypes(h, { leaseId: lease.id })).toContain('lease-setup-progress');

    unwrap(await h.services.resources.release(h.system, resource.id));
    await waitForLease(h, baseLeaseId, ['DESTROYED']);
    await waitForLease(h, lease.id, ['DESTROYED']);
    // The resource is torn down and destroyed once its leases are gone.
    await waitFor(
      async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resource.id } })).status === 'DESTROYED',
    );
    expect(control.teardowns).toEqual([resource.id]);
  });

  it('a blueprint not authorized on what it leases: its resources break, and the lease gives up after a few', async () => {
    await blueprints({ authorize: false });
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    const destroyed = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(destroyed.statusReason).toBe('resource-broken');
    const broken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    expect((broken.data as { message: string }).message).toMatch(
      /3 resources broke; the last, \d+: base lease \d+ is DESTROYED/,
    );
    expect(await h.db.prisma.resource.count({ where: { type: 'stack' } })).toBe(3);
  });

  it('lease setup: waits, retries a temporary failure, then activates; a permanent one breaks the lease', async () => {
    await blueprints();
    control.setupOutcomes = ['wait', 'temporary'];
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    await waitForLease(h, lease.id, ['ACTIVE']);
    expect(control.setups.filter((id) => id === lease.id)).toHaveLength(3);
    expect(await logTypes(h, { leaseId: lease.id })).toContain('lease-setup-failed-temporarily');
    unwrap(await h.services.leases.release(h.system, lease.id));
    await waitForLease(h, lease.id, ['DESTROYED']);

    control.setupOutcomes = ['permanent'];
    const doomed = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    const destroyed = await waitForLease(h, doomed.id, ['DESTROYED']);
    expect(destroyed.statusReason).toBe('setup-failed');
    const broken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: doomed.id, type: 'lease-broken' } });
    expect(broken.data).toMatchObject({ message: `setup of lease ${doomed.id}: permanent (test)` });
    // Its slot lock went with it: the next lease gets the same working resource.
    const next = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    await waitForLease(h, next.id, ['ACTIVE']);
  });

  it('teardown: retried with backoff, then the resource is destroyed anyway with the failure logged', async () => {
    await blueprints();
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'stack' }));
    const active = await waitForLease(h, lease.id, ['ACTIVE']);
    control.teardownOutcomes = ['temporary', 'temporary', 'temporary', 'temporary'];
    unwrap(await h.services.resources.release(h.system, active.resourceId!));
    await waitForLease(h, lease.id, ['DESTROYED']);
    await expect
      .poll(async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: active.resourceId! } })).status)
      .toBe('DESTROYED');
    expect(control.teardowns).toHaveLength(3);
    const types = await logTypes(h, { resourceId: active.resourceId! });
    expect(types.filter((t) => t === 'resource-teardown-failed')).toHaveLength(3);
    expect(types).toContain('resource-teardown-abandoned');
    expect(await h.db.prisma.slotLock.count({ where: { ownerResourceId: active.resourceId! } })).toBe(0);
  });

  it('maintenance runs periodically from creation, survives a failure, and stops while disabled', async () => {
    control.maintenanceFailures = 1;
    const { stack } = await blueprints({ maintenanceMs: 50 });
    await expect.poll(() => control.maintenanceRuns, { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    const logs = await logTypes(h, {});
    expect(logs).toContain('blueprint-maintenance-failed');
    expect(logs).toContain('blueprint-maintenance');
    unwrap(await h.services.blueprints.setDisabled(h.system, stack.id, true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopped = control.maintenanceRuns;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(control.maintenanceRuns).toBe(stopped);
    unwrap(await h.services.blueprints.setDisabled(h.system, stack.id, false));
    await expect.poll(() => control.maintenanceRuns, { timeout: 30_000 }).toBeGreaterThan(stopped);
  });
});
