import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, logTypes, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { createGitFixtures, git, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';
import { createWorkingCopyStack, type WorkingCopyStack } from './working-copy-stack.js';

// One copy, many leases at once: the copy's slot lock lets one lease at a time have it, so each
// lease finds the checkout it asked for and keeps it until it releases.

const LEASES = 8;
const ROUNDS = 3;

describePostgres('working-copy exclusivity', () => {
  let h: Harness;
  let fixtures: GitFixtures;
  let app: GitOrigin;
  let stack: WorkingCopyStack;
  let stopWorker: () => Promise<void>;

  beforeAll(async () => {
    h = await createHarness('postgresql', { transports: { allowLocal: true } });
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
    fixtures = await createGitFixtures();
    app = await fixtures.origin('app');
    stack = await createWorkingCopyStack(h, fixtures.root, { resourceLimit: 1 });
  });
  afterAll(async () => {
    await stopWorker();
    await h.dispose();
    await fixtures.dispose();
  });

  // Different checkouts, so that a lease set up while another holds the copy would show.
  const targets = () => [
    { ask: { commit: app.commits.first }, head: app.commits.first },
    { ask: { branch: 'feature' }, head: app.commits.feature },
    { ask: { ref: 'refs/changes/1/1' }, head: app.commits.change },
    { ask: {}, head: app.commits.main },
  ];

  /** Takes the copy, checks it holds this lease's checkout from start to end, gives it back. */
  async function useCopy(index: number) {
    const target = targets()[index % 4]!;
    const requested = unwrap(
      await h.services.leases.request(h.system, {
        resourceType: 'working-copy',
        attributes: { repositories: { src: { url: app.url, ...target.ask } } },
      }),
    );
    const lease = await waitForLease(h, requested.id, ['ACTIVE', 'DESTROYED'], 120_000);
    expect(lease.status, `lease ${lease.id}`).toBe('ACTIVE');
    const src = join(stack.root, String(lease.resourceId), 'src');
    expect(await git(src, 'rev-parse', 'HEAD')).toBe(target.head);
    await sleep(20);
    expect(await git(src, 'rev-parse', 'HEAD')).toBe(target.head);
    unwrap(await h.services.leases.release(h.system, lease.id));
    return waitForLease(h, lease.id, ['DESTROYED'], 30_000);
  }

  it.each(Array.from({ length: ROUNDS }, (_, round) => round + 1))(
    `round %i: ${LEASES} concurrent leases on a blueprint limited to one copy take turns`,
    async () => {
      const ended = await Promise.all(Array.from({ length: LEASES }, (_, i) => useCopy(i)));
      for (const lease of ended) {
        const types = await logTypes(h, { leaseId: lease.id });
        expect(types, `lease ${lease.id}`).not.toContain('lease-broken');
        expect(types.filter((t) => ['lease-activated', 'lease-released', 'lease-destroyed'].includes(t))).toEqual([
          'lease-activated',
          'lease-released',
          'lease-destroyed',
        ]);
      }
      const intervals = ended
        .map((l) => ({ id: l.id, from: l.activatedAt!.getTime(), to: l.releasedAt!.getTime() }))
        .sort((a, b) => a.from - b.from);
      for (let i = 1; i < intervals.length; i++)
        expect(intervals[i]!.from, `lease ${intervals[i]!.id} after ${intervals[i - 1]!.id}`).toBeGreaterThanOrEqual(
          intervals[i - 1]!.to,
        );
      const copies = await h.db.prisma.resource.findMany({ where: { blueprintId: stack.copies.id } });
      expect(copies.map((c) => c.status)).toEqual(['ACTIVE']);
      expect(new Set(ended.map((l) => l.resourceId))).toEqual(new Set([copies[0]!.id]));
    },
  );
});
