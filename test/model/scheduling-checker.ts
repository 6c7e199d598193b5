import type { Database } from '../../src/db/database.js';

// The scheduler's invariants, checked after a model run from the leases and their logs:
//   - a gang is granted whole, in one pass, or not at all;
//   - an owner never holds more live leases of a type than its quota;
//   - within each pass, grants go in policy order (bands never rise along a pass's grants);
//   - no lease waits past the aging bound while a pass gives capacity it could use (a later lease
//     of the same demand, at no higher band) to another.
// A pass is recognized by its grants sharing one `now` (their lease-acquired logs' createdAt) and
// one resource type.

export interface SchedulingRules {
  agingIntervalMs: number;
  /** Quota of live leases per owner and type. */
  quota(ownerId: number | null, resourceType: string): number | null;
}

interface LeaseRow {
  id: number;
  ownerId: number | null;
  gangId: number | null;
  priority: number;
  resourceType: string;
  attributes: unknown;
  createdAt: Date;
}

interface EventRow {
  id: bigint;
  type: string;
  leaseId: number;
  createdAt: Date;
}

/** Time between a transaction's `now` and its commit, and between a request's and its pass's. */
const SLACK_MS = 1_000;

export async function schedulingViolations(db: Database, rules: SchedulingRules): Promise<string[]> {
  const problems: string[] = [];
  const add = (message: string) => problems.length < 200 && problems.push(message);
  const leases = new Map(
    (
      await db.prisma.lease.findMany({
        select: {
          id: true,
          ownerId: true,
          gangId: true,
          priority: true,
          resourceType: true,
          attributes: true,
          createdAt: true,
        },
      })
    ).map((l): [number, LeaseRow] => [l.id, l]),
  );
  const events = await db.prisma.$queryRaw<EventRow[]>`
    SELECT id, type, "leaseId", "createdAt" FROM "Log"
    WHERE "leaseId" IS NOT NULL
      AND type IN ('lease-acquired', 'lease-reacquiring', 'lease-released', 'lease-broken', 'lease-destroyed',
                   'lease-release-requested')
    ORDER BY id`;

  // Quotas, replayed in log order (commit order for a lease's own transitions).
  const live = new Set<number>();
  const held = new Map<string, number>();
  const key = (lease: LeaseRow) => `${lease.ownerId}:${lease.resourceType}`;
  const firstAcquired = new Map<number, EventRow>();
  const ended = new Map<number, number>();
  const releaseAsked = new Map<number, number[]>();
  for (const event of events) {
    const lease = leases.get(event.leaseId);
    if (!lease) continue;
    if (event.type === 'lease-acquired') {
      if (!firstAcquired.has(lease.id)) firstAcquired.set(lease.id, event);
      live.add(lease.id);
      const count = (held.get(key(lease)) ?? 0) + 1;
      held.set(key(lease), count);
      const quota = rules.quota(lease.ownerId, lease.resourceType);
      if (quota !== null && count > quota)
        add(
          `owner ${lease.ownerId} holds ${count} live ${lease.resourceType} leases, over its quota of ${quota} (log ${event.id})`,
        );
    } else if (event.type === 'lease-release-requested') {
      releaseAsked.set(lease.id, [...(releaseAsked.get(lease.id) ?? []), event.createdAt.getTime()]);
    } else {
      if (live.delete(lease.id)) held.set(key(lease), (held.get(key(lease)) ?? 1) - 1);
      if (event.type !== 'lease-reacquiring' && !ended.has(lease.id)) ended.set(lease.id, event.createdAt.getTime());
    }
  }

  // Gangs: every part acquired in the same pass, or none ever.
  const gangs = new Map<number, LeaseRow[]>();
  for (const lease of leases.values())
    if (lease.gangId !== null) gangs.set(lease.gangId, [...(gangs.get(lease.gangId) ?? []), lease]);
  for (const [gangId, parts] of gangs) {
    const times = parts.map((p) => firstAcquired.get(p.id)?.createdAt.getTime() ?? null);
    const acquired = times.filter((t) => t !== null);
    if (acquired.length > 0 && (acquired.length < parts.length || new Set(acquired).size > 1))
      add(
        `gang ${gangId} granted in part: ${parts.map((p, i) => `lease ${p.id} at ${times[i] ?? 'never'}`).join(', ')}`,
      );
  }

  // Passes: grants sharing one `now` and type, in log order.
  const band = (lease: LeaseRow, at: number) =>
    lease.priority + Math.floor(Math.max(0, at - lease.createdAt.getTime()) / rules.agingIntervalMs);
  const passes = new Map<string, { at: number; type: string; grants: LeaseRow[] }>();
  for (const event of events) {
    if (event.type !== 'lease-acquired') continue;
    const lease = leases.get(event.leaseId);
    if (!lease) continue;
    const at = event.createdAt.getTime();
    const id = `${at}:${lease.resourceType}`;
    const pass = passes.get(id) ?? { at, type: lease.resourceType, grants: [] };
    pass.grants.push(lease);
    passes.set(id, pass);
  }
  const demand = (lease: LeaseRow) => `${lease.resourceType}|${JSON.stringify(lease.attributes)}|${lease.ownerId}`;
  const waitingAt = (lease: LeaseRow, at: number) => {
    const granted = firstAcquired.get(lease.id)?.createdAt.getTime();
    const end = ended.get(lease.id);
    const asked = releaseAsked.get(lease.id) ?? [];
    return (
      lease.gangId === null &&
      lease.createdAt.getTime() < at - SLACK_MS &&
      (granted === undefined || granted > at + SLACK_MS) &&
      (end === undefined || end > at + SLACK_MS) &&
      // Its own update (a release) may hold it while the pass runs: the pass skips it then.
      !asked.some((t) => Math.abs(t - at) <= SLACK_MS)
    );
  };
  const byDemand = new Map<string, LeaseRow[]>();
  for (const lease of leases.values()) byDemand.set(demand(lease), [...(byDemand.get(demand(lease)) ?? []), lease]);
  for (const pass of passes.values()) {
    for (let i = 1; i < pass.grants.length; i++) {
      const [before, after] = [pass.grants[i - 1]!, pass.grants[i]!];
      if (band(after, pass.at) > band(before, pass.at))
        add(
          `pass at ${new Date(pass.at).toISOString()} granted lease ${after.id} (band ${band(after, pass.at)}) after lease ${before.id} (band ${band(before, pass.at)})`,
        );
    }
    for (const granted of pass.grants) {
      if (granted.gangId !== null) continue;
      const quota = rules.quota(granted.ownerId, granted.resourceType);
      for (const other of byDemand.get(demand(granted)) ?? []) {
        if (other.id >= granted.id || !waitingAt(other, pass.at)) continue;
        if (pass.at - other.createdAt.getTime() < rules.agingIntervalMs + SLACK_MS) continue;
        if (band(other, pass.at) < band(granted, pass.at)) continue;
        // At its quota, the owner's older lease could not have had it either way.
        if (quota !== null) continue;
        add(
          `lease ${other.id} had waited past the aging bound when the pass at ${new Date(pass.at).toISOString()} gave lease ${granted.id} (same demand, no higher band) what it could use`,
        );
      }
    }
  }
  return problems;
}
