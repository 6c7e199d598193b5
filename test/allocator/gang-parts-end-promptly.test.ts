import { expect, it } from 'vitest';
import type { Lease, LeaseStatus } from '../../src/generated/prisma/client.js';
import { defaultAllocatorOptions } from '../../src/allocator/options.js';
import { defaultWorkerOptions } from '../../src/queue/worker.js';
import { describePostgres } from '../support/database.js';
import { harnessForEachTest, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';

// A gang's parts end together: whatever ends one part makes the others' jobs due at once, and the
// commit that does so must wake a worker for them. The worker here sweeps the queue only as often
// as it does by default (the test harness's own sweep is far shorter, and would hide a missing
// wake-up), and nothing else is due meanwhile (no idle retries, no health checks): a part that is
// not woken waits for that sweep, several seconds.

const SWEEP_MS = defaultWorkerOptions.sweepIntervalMs;
/** Well under the sweep: only a wake-up brings the parts there in time. */
const PROMPTLY_MS = SWEEP_MS / 4;

describePostgres('a gang’s parts end promptly together', () => {
  let h: Harness;
  harnessForEachTest('postgresql', (made) => (h = made), {
    worker: { sweepIntervalMs: SWEEP_MS },
    allocator: {
      idleRetryMs: defaultAllocatorOptions.idleRetryMs,
      healthCheckIntervalMs: defaultAllocatorOptions.healthCheckIntervalMs,
    },
  });

  const ended: LeaseStatus[] = ['RELEASED', 'DESTROYED'];
  const broken: LeaseStatus[] = ['BROKEN', 'DESTROYED'];

  const slots = (maxResources: number) =>
    h.services.blueprints
      .create(h.system, { name: 'slots', implementation: 'test', config: { exclusive: true, maxResources } })
      .then(unwrap);
  const request = () => h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap);
  const requestGang = (parts: number, extra: { until?: Date; waitTimeoutSeconds?: number } = {}) =>
    h.services.leases
      .requestGang(h.system, { parts: [{ resourceType: 'test-slot', count: parts }], ...extra })
      .then(unwrap);

  async function activeGang(parts: number, extra: { until?: Date } = {}): Promise<Lease[]> {
    await slots(parts);
    const gang = await requestGang(parts, extra);
    return Promise.all(gang.map((part) => waitForLease(h, part.id, ['ACTIVE'])));
  }

  /** How long, from `since`, until every lease of `leases` is in one of `statuses`. */
  async function msUntil(since: number, leases: Lease[], statuses: LeaseStatus[]): Promise<number> {
    await Promise.all(leases.map((lease) => waitForLease(h, lease.id, statuses, 3 * SWEEP_MS)));
    return Date.now() - since;
  }

  const releaseReasons = async (leases: Lease[]) =>
    (
      await h.db.prisma.log.findMany({
        where: { type: 'lease-released', leaseId: { in: leases.map((l) => l.id) } },
        orderBy: { leaseId: 'asc' },
      })
    ).map((l) => (l.data as { reason: string }).reason);

  it('releasing one part releases every other part at once', async () => {
    const [first, ...others] = await activeGang(3);
    const releasedAt = Date.now();
    unwrap(await h.services.leases.release(h.system, first!.id));
    expect(await msUntil(releasedAt, [first!, ...others], ended)).toBeLessThan(PROMPTLY_MS);
    expect(await releaseReasons([first!, ...others])).toEqual(['command', 'command', 'command']);
  }, 60_000);

  it('a part whose resource is released releases every other part at once', async () => {
    const [first, ...others] = await activeGang(3);
    const releasedAt = Date.now();
    unwrap(await h.services.resources.release(h.system, first!.resourceId!));
    expect(await msUntil(releasedAt, [first!, ...others], ended)).toBeLessThan(PROMPTLY_MS);
    expect(await releaseReasons(others)).toEqual(['command', 'command']);
  }, 60_000);

  it('a part whose resource breaks releases every other part at once', async () => {
    const [first, ...others] = await activeGang(3);
    h.control.checkFailures.set(first!.resourceId!, ['permanent']);
    const brokenAt = Date.now();
    // The resource's update checks it, as its periodic health check would.
    await h.services.worker.runUpdate('resource', first!.resourceId!);
    expect(await msUntil(brokenAt, [first!], broken)).toBeLessThan(PROMPTLY_MS);
    expect(await msUntil(brokenAt, others, ended)).toBeLessThan(PROMPTLY_MS);
  }, 60_000);

  it('a granted gang expires whole when its until comes', async () => {
    const until = new Date(Date.now() + 2_000);
    const gang = await activeGang(3, { until });
    expect(await msUntil(until.getTime(), gang, ended)).toBeLessThan(PROMPTLY_MS);
    expect(await releaseReasons(gang)).toEqual(['expired', 'expired', 'expired']);
  }, 60_000);

  /**
   * A gang asked for while its type's pass runs (held inside its transaction, granting the last
   * slot to a lease asked for just before): the gang's commit only marks that pass to run again,
   * so the commit's own wake-up is not the pass's, and the gang waits once the pass has run. A
   * first lease is served before, so that the worker's start-up look at the queue is over by then
   * and cannot find the gang's jobs itself. `extra` is read just before the gang is asked for.
   */
  async function gangBehindRunningPass(extra: () => { until?: Date; waitTimeoutSeconds?: number }): Promise<Lease[]> {
    await slots(2);
    await waitForLease(h, (await request()).id, ['ACTIVE']);
    const pass = h.control.pauseNextAllocate();
    const last = await request();
    await pass.paused;
    const gang = await requestGang(2, extra());
    pass.resume();
    await waitForLease(h, last.id, ['ACTIVE']);
    return gang;
  }

  // Not granted: the parts' own updates, due at the gang's deadlines, end them.
  it('a waiting gang ends whole when its wait times out', async () => {
    const gang = await gangBehindRunningPass(() => ({ waitTimeoutSeconds: 1 }));
    const waitUntil = gang[0]!.waitUntil!.getTime();
    expect(await msUntil(waitUntil, gang, broken)).toBeLessThan(PROMPTLY_MS);
  }, 60_000);

  it('a waiting gang ends whole when its until comes', async () => {
    let until!: Date;
    const gang = await gangBehindRunningPass(() => ({ until: (until = new Date(Date.now() + 1_000)) }));
    expect(await msUntil(until.getTime(), gang, ended)).toBeLessThan(PROMPTLY_MS);
    expect(await releaseReasons(gang)).toEqual(['expired', 'expired']);
  }, 60_000);
});
