import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, unwrap, type Harness } from '../support/allocator-harness.js';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.js';

// Allocators in separate processes (not promises in one), working one PostgreSQL queue. The test
// process only requests and releases; the workers are child processes, which the crash test kills
// with SIGKILL in the middle of an allocation.

const ROUNDS = Number(process.env['PROCESS_ROUNDS'] ?? 2);

describePostgres('allocator processes', () => {
  let h: Harness;
  let url: string;
  const workers: WorkerProcess[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql');
    url = h.db.url!;
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    await h.dispose();
  });
  beforeEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
    await h.reset();
  });

  const start = async (id: string, env: Record<string, string> = {}) => {
    const worker = await startWorkerProcess(url, id, env);
    workers.push(worker);
    return worker;
  };

  /** Test-side waiting across processes: the workers' events do not reach this process. */
  async function until(what: string, done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline)
        throw new Error(`${what}: not done after ${timeoutMs} ms\n${workers.map((w) => w.output()).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const releaseActive = async () => {
    const active = await h.db.prisma.lease.findMany({ where: { status: 'ACTIVE' }, select: { id: true } });
    for (const lease of active) await h.services.leases.release(h.system, lease.id);
  };

  for (let round = 1; round <= ROUNDS; round++) {
    it(`three allocator processes never run one object's update twice at once (round ${round})`, async () => {
      const trace = join(tmpdir(), `drydock-trace-${randomUUID()}.jsonl`);
      try {
        await Promise.all([0, 1, 2].map((i) => start(`proc-${i}`, { WORKER_TRACE: trace })));
        unwrap(
          await h.services.blueprints.create(h.system, {
            name: 'slots',
            implementation: 'test',
            config: { exclusive: true, activation: 'later' },
            resourceLimit: 4,
          }),
        );
        const leases = await Promise.all(
          Array.from({ length: 40 }, () =>
            h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap),
          ),
        );
        // Every lease is released as soon as it is ACTIVE, so that the slots change hands many times.
        await until(
          'all leases served and destroyed',
          async () => {
            await releaseActive();
            return (await h.db.prisma.lease.count({ where: { status: 'DESTROYED' } })) === leases.length;
          },
          120_000,
        );
        const runs = readFileSync(trace, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as { key: string; pid: number; enter: number; exit: number });
        const byKey = new Map<string, typeof runs>();
        for (const run of runs) byKey.set(run.key, [...(byKey.get(run.key) ?? []), run]);
        const overlaps: string[] = [];
        for (const [key, list] of byKey) {
          list.sort((a, b) => a.enter - b.enter);
          for (let i = 1; i < list.length; i++)
            if (list[i]!.enter < list[i - 1]!.exit)
              overlaps.push(
                `${key}: pid ${list[i]!.pid} entered while pid ${list[i - 1]!.pid} was inside ` +
                  `(${(list[i - 1]!.exit - list[i]!.enter).toFixed(3)} ms before it left; ` +
                  `runs of ${key}: ${JSON.stringify(list)})`,
              );
        }
        expect(overlaps).toEqual([]);
        // The test could have failed: all three processes did work, and objects moved between them.
        const pids = new Set(runs.map((r) => r.pid));
        const shared = [...byKey.values()].filter((list) => new Set(list.map((r) => r.pid)).size > 1).length;
        console.log(
          `round ${round}: ${runs.length} updates by ${pids.size} processes; ${shared} objects updated by more than one`,
        );
        expect(pids.size).toBe(3);
        // Leases are granted by their type's pass, so each has few updates of its own; the pass's
        // job and the slots' resources are what moves between processes. At least one object must
        // have moved, or the overlap check above proved nothing (a round had 2, another 4).
        expect(shared).toBeGreaterThan(0);
        expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: { not: null } } })).toBe(0);
      } finally {
        if (existsSync(trace)) rmSync(trace);
      }
    }, 150_000);
  }

  for (const hook of ['allocateResource', 'activateResource'] as const) {
    it(`a worker killed with SIGKILL inside ${hook}: another one finishes every lease, no lock orphaned, no job lost`, async () => {
      unwrap(
        await h.services.blueprints.create(h.system, {
          name: 'later',
          implementation: 'test',
          config: { activation: 'later' },
          resourceLimit: 2,
        }),
      );
      const doomed = await start('doomed', { WORKER_BLOCK: hook, WORKER_CLAIM_TTL_MS: '1500' });
      const leases = await Promise.all(
        Array.from({ length: 6 }, () =>
          h.services.leases.request(h.system, { resourceType: 'test-slot' }).then(unwrap),
        ),
      );
      await doomed.waitFor(/BLOCKED/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await doomed.kill('SIGKILL')).toBe('SIGKILL');
      // The kill interrupted claimed work: those claims are all that is left of the dead process.
      expect(await h.db.prisma.job.count({ where: { lockedBy: { startsWith: 'doomed:' } } })).toBeGreaterThan(0);

      await start('survivor');
      const settled = ['ACTIVE', 'BROKEN', 'DESTROYED'] as const;
      await until(
        'every lease ACTIVE or broken',
        async () => (await h.db.prisma.lease.count({ where: { status: { in: [...settled] } } })) === leases.length,
        60_000,
      );
      const after = await h.db.prisma.lease.findMany();
      for (const lease of after) {
        if (lease.status === 'ACTIVE') continue;
        // Anything else must be a broken lease whose log says why.
        expect(lease.statusReason).toBe('lease-broken');
        expect(await h.db.prisma.log.count({ where: { leaseId: lease.id, type: 'lease-broken' } })).toBe(1);
      }
      expect(after.filter((l) => l.status === 'ACTIVE').length).toBe(leases.length);

      // No slot lock is orphaned: every owner is alive.
      const locks = await h.db.prisma.slotLock.findMany({ include: { ownerLease: true, ownerResource: true } });
      expect(locks.length).toBeGreaterThan(0);
      for (const lock of locks) {
        const live =
          (lock.ownerLease && ['ACQUIRED', 'ACTIVE'].includes(lock.ownerLease.status)) ||
          (lock.ownerResource && ['PENDING', 'ACTIVE'].includes(lock.ownerResource.status));
        expect(live, `slot lock ${lock.key}`).toBe(true);
      }
      // No job is lost: the dead process's claims were taken over and nothing is stuck.
      expect(await h.db.prisma.job.count({ where: { lockedBy: { startsWith: 'doomed:' } } })).toBe(0);
      expect(await h.db.prisma.job.count({ where: { runAt: { lt: new Date(Date.now() - 5_000) } } })).toBe(0);

      // And everything still winds down cleanly.
      for (const lease of leases) unwrap(await h.services.leases.release(h.system, lease.id));
      await until(
        'all leases destroyed',
        async () => (await h.db.prisma.lease.count({ where: { status: 'DESTROYED' } })) === leases.length,
        30_000,
      );
      expect(await h.db.prisma.slotLock.count({ where: { ownerLeaseId: { not: null } } })).toBe(0);
    }, 120_000);
  }
});
