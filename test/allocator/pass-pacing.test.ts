import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PassPacing } from '../../src/allocator/scheduler/pacing.js';
import { describeEachDatabase } from '../support/database.js';
import { createHarness, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';

describe('pass pacing', () => {
  afterEach(() => vi.useRealTimers());

  it("delays a request's pass while the type's last pass ended less than ten gaps ago, not otherwise", () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const pacing = new PassPacing(10);
    expect(pacing.delayMs('host')).toBe(0);
    pacing.ended('host');
    expect(pacing.delayMs('host')).toBe(10);
    expect(pacing.delayMs('other')).toBe(0);
    vi.advanceTimersByTime(99);
    expect(pacing.delayMs('host')).toBe(10);
    vi.advanceTimersByTime(1);
    expect(pacing.delayMs('host')).toBe(0);
  });

  it('never delays with a gap of 0', () => {
    const pacing = new PassPacing(0);
    pacing.ended('host');
    expect(pacing.delayMs('host')).toBe(0);
  });
});

const GAP_MS = 1_000;

describeEachDatabase('requests while their type is busy', (kind) => {
  let h: Harness;
  let stopWorker: () => Promise<void>;
  let passes = 0;
  beforeAll(async () => {
    h = await createHarness(kind, {
      allocator: { passGapMs: GAP_MS },
      worker: {
        wrap: async (claim, run) => {
          if (claim.job.key.startsWith('pass:')) passes++;
          await run();
        },
      },
    });
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
  });

  it('wait one gap for a pass that serves them together', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'shared',
        implementation: 'test',
        config: { leasesPerResource: 8 },
        resourceLimit: 1,
      }),
    );
    const request = () => h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap);
    // The type's first pass: nothing ran before it, so it starts at once.
    await waitForLease(h, (await request()).id, ['ACTIVE']);
    const before = passes;
    const second = await request();
    const third = await request();
    const [job] = await h.db.prisma.job.findMany({ where: { kind: 'SCHEDULING_PASS' } });
    // Asked for by the second request, one gap after it; the third's request kept that time.
    expect(job?.runAt.getTime()).toBe(second.createdAt.getTime() + GAP_MS);
    expect(job?.lockedBy).toBeNull();
    await waitForLease(h, second.id, ['ACTIVE']);
    await waitForLease(h, third.id, ['ACTIVE']);
    expect(passes - before).toBe(1);
  });
});
