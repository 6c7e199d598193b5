import type { Database } from '../../src/db/database.js';
import type { Actor, Services } from '../../src/services/index.js';
import type { ModelLease } from './lease-model.js';
import { jobProblems } from './snapshot.js';

// After the operation stream: the model releases what it still holds (leases with an `until` are
// left to expire on their own, which is part of what is checked) and waits, within a deadline, for
// every lease to be destroyed, every resource to be open-and-idle or destroyed, and the queue to
// be clean.

export interface Settled {
  settled: boolean;
  ms: number;
  /** What was still unsettled at the deadline. */
  left: string[];
}

export async function settle(
  db: Database,
  services: Services,
  system: Actor,
  model: ReadonlyMap<number, ModelLease>,
  deadline: number,
  deadWorkers: readonly string[],
): Promise<Settled> {
  const started = Date.now();
  let left: string[] = [];
  let reported = started;
  while (Date.now() < deadline) {
    const leases = await db.prisma.lease.findMany({
      where: { status: { not: 'DESTROYED' } },
      select: { id: true, status: true },
    });
    for (const lease of leases) {
      const wanted = model.get(lease.id);
      if (!wanted || wanted.releasedByUs || wanted.until) continue;
      if (!['PENDING', 'ACQUIRED', 'ACTIVE'].includes(lease.status)) continue;
      const result = await services.leases.release(system, lease.id);
      // A gang's parts are released together.
      if (result.ok) for (const part of wanted.gang ?? [wanted.id]) model.get(part)!.releasedByUs = true;
    }
    const resources = await db.prisma.resource.findMany({
      where: { status: { in: ['PENDING', 'RELEASED', 'BROKEN'] } },
      select: { id: true, status: true },
    });
    left = [
      ...leases.slice(0, 20).map((l) => `lease ${l.id} is ${l.status}`),
      ...resources.slice(0, 20).map((r) => `resource ${r.id} is ${r.status}`),
      ...(await jobProblems(db, deadWorkers)),
    ];
    if (left.length === 0) return { settled: true, ms: Date.now() - started, left };
    // A long run that does not settle must say why while it waits, not only at its deadline.
    if (Date.now() - reported >= 30_000) {
      reported = Date.now();
      console.log(`model: settling for ${Math.round((reported - started) / 1_000)} s; left: ${left.join('; ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { settled: false, ms: Date.now() - started, left };
}
