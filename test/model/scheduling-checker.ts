import type { Database } from '../../src/db/database.js';

// The scheduler's invariants, checked after a model run from the leases and their logs:
//   - a gang is granted whole, in one pass, or not at all;
//   - an owner never holds more live leases of a type than its quota;
//   - within each pass, grants go in policy order: bands never rise along a pass's grants, and one
//     owner's grants go in band then arrival order;
//   - greedy: a pass never gives a lease (or a gang's part) what a waiting lease ahead of it in
//     policy order could use (the same type, attributes and allowed blueprints; or, where the
//     rules say which blueprints a lease fits, any lease that fits the blueprint of the resource
//     given): ahead means a higher band, or, for the same owner, the same band and older. A lease that waited past the aging bound has a higher
//     band than any lease of its priority that arrived after it, so this is also the aging bound:
//     no lease waits past it while the capacity it could use goes to later ones;
//   - a gang that waited past the aging bound reserves what frees: no pass gives capacity of its
//     type to a lease of a lower band (in the model any grant of the type could serve a part).
// A pass is recognized by its grants sharing one `now` (their lease-acquired logs' createdAt) and
// one resource type. Fair share between owners of one band is not judged here: it depends on live
// counts at the moment the pass read them, which the log cannot pin down while other processes
// release concurrently (test/allocator/pass-order.test.ts checks it against a reference greedy).

export interface SchedulingRules {
  agingIntervalMs: number;
  /** Quota of live leases per owner and type. */
  quota(ownerId: number | null, resourceType: string): number | null;
  /**
   * Whether the lease could be served by the blueprint (its attributes and allowed blueprints fit
   * it): what makes a resource of that blueprint one the lease could use. Without it, only a lease
   * of the same demand could use what another was given.
   */
  fits?(lease: LeaseRow, blueprintId: number): boolean;
}

export interface LeaseRow {
  id: number;
  ownerId: number | null;
  gangId: number | null;
  priority: number;
  resourceType: string;
  attributes: unknown;
  allowedBlueprintIds: number[];
  createdAt: Date;
}

export interface EventRow {
  id: bigint;
  type: string;
  leaseId: number | null;
  resourceId: number | null;
  createdAt: Date;
}

export interface SchedulingHistory {
  leases: LeaseRow[];
  /** Lease and resource logs in id order: see eventTypes. */
  events: EventRow[];
  /** Each resource's blueprint. */
  resources?: { id: number; blueprintId: number }[];
}

const leaseEvents = [
  'lease-acquired',
  'lease-reacquiring',
  'lease-released',
  'lease-broken',
  'lease-destroyed',
  'lease-release-requested',
];
const resourceEvents = [
  'resource-allocated',
  'resource-activated',
  'resource-broken',
  'resource-released',
  'resource-destroyed',
];

/** Time between a transaction's `now` and its commit, and between a request's and its pass's. */
const SLACK_MS = 1_000;

export async function readSchedulingHistory(db: Database): Promise<SchedulingHistory> {
  const leases = await db.prisma.lease.findMany({
    select: {
      id: true,
      ownerId: true,
      gangId: true,
      priority: true,
      resourceType: true,
      attributes: true,
      allowedBlueprintIds: true,
      createdAt: true,
    },
  });
  const events = await db.prisma.$queryRaw<EventRow[]>`
    SELECT id, type, "leaseId", "resourceId", "createdAt" FROM "Log"
    WHERE (type = ANY(${leaseEvents}::text[]) AND "leaseId" IS NOT NULL) OR type = ANY(${resourceEvents}::text[])
    ORDER BY id`;
  const resources = await db.prisma.resource.findMany({ select: { id: true, blueprintId: true } });
  return { leases, events, resources };
}

export async function schedulingViolations(db: Database, rules: SchedulingRules): Promise<string[]> {
  return checkScheduling(await readSchedulingHistory(db), rules);
}

interface Pass {
  at: number;
  type: string;
  grants: LeaseRow[];
  /** The resource each grant got, by lease id. */
  resources: Map<number, number | null>;
}

export function checkScheduling(history: SchedulingHistory, rules: SchedulingRules): string[] {
  const problems: string[] = [];
  const add = (message: string) => problems.length < 200 && problems.push(message);
  const leases = new Map(history.leases.map((l): [number, LeaseRow] => [l.id, l]));

  // Quotas, replayed in log order (commit order for a lease's own transitions).
  const live = new Set<number>();
  const held = new Map<string, number>();
  const key = (lease: LeaseRow) => `${lease.ownerId}:${lease.resourceType}`;
  const acquired = new Map<number, number[]>();
  const ended = new Map<number, number>();
  const releaseAsked = new Map<number, number[]>();
  /** Resources being built for a lease: from resource-allocated until they leave PENDING. */
  const builds = new Map<number, { leaseId: number; from: number; to: number }>();
  const passes = new Map<string, Pass>();
  for (const event of history.events) {
    const at = event.createdAt.getTime();
    if (event.type === 'resource-allocated') {
      if (event.resourceId !== null && event.leaseId !== null)
        builds.set(event.resourceId, { leaseId: event.leaseId, from: at, to: Infinity });
      continue;
    }
    if (event.type.startsWith('resource-')) {
      const build = event.resourceId === null ? undefined : builds.get(event.resourceId);
      if (build && build.to === Infinity) build.to = at;
      continue;
    }
    const lease = event.leaseId === null ? undefined : leases.get(event.leaseId);
    if (!lease) continue;
    if (event.type === 'lease-acquired') {
      acquired.set(lease.id, [...(acquired.get(lease.id) ?? []), at]);
      live.add(lease.id);
      const count = (held.get(key(lease)) ?? 0) + 1;
      held.set(key(lease), count);
      const quota = rules.quota(lease.ownerId, lease.resourceType);
      if (quota !== null && count > quota)
        add(
          `owner ${lease.ownerId} holds ${count} live ${lease.resourceType} leases, over its quota of ${quota} (log ${event.id})`,
        );
      const id = `${at}:${lease.resourceType}`;
      const pass: Pass = passes.get(id) ?? { at, type: lease.resourceType, grants: [], resources: new Map() };
      pass.grants.push(lease);
      pass.resources.set(lease.id, event.resourceId);
      passes.set(id, pass);
    } else if (event.type === 'lease-release-requested') {
      releaseAsked.set(lease.id, [...(releaseAsked.get(lease.id) ?? []), at]);
    } else {
      if (live.delete(lease.id)) held.set(key(lease), (held.get(key(lease)) ?? 1) - 1);
      if (event.type !== 'lease-reacquiring' && !ended.has(lease.id)) ended.set(lease.id, at);
    }
  }

  // Gangs: every part acquired in the same pass, or none ever.
  const gangs = new Map<number, LeaseRow[]>();
  for (const lease of leases.values())
    if (lease.gangId !== null) gangs.set(lease.gangId, [...(gangs.get(lease.gangId) ?? []), lease]);
  for (const [gangId, parts] of gangs) {
    const times = parts.map((p) => acquired.get(p.id)?.[0] ?? null);
    const got = times.filter((t) => t !== null);
    if (got.length > 0 && (got.length < parts.length || new Set(got).size > 1))
      add(
        `gang ${gangId} granted in part: ${parts.map((p, i) => `lease ${p.id} at ${typeof times[i] === 'number' ? new Date(times[i]).toISOString() : 'never'}`).join(', ')}`,
      );
  }

  const band = (lease: LeaseRow, at: number) =>
    lease.priority + Math.floor(Math.max(0, at - lease.createdAt.getTime()) / rules.agingIntervalMs);
  const arrival = (a: LeaseRow, b: LeaseRow) => a.createdAt.getTime() - b.createdAt.getTime() || a.id - b.id;
  /** Whether policy order puts `a` ahead of `b` whatever the owners' shares. */
  const ahead = (a: LeaseRow, b: LeaseRow, at: number) =>
    band(a, at) > band(b, at) || (a.ownerId === b.ownerId && band(a, at) === band(b, at) && arrival(a, b) < 0);
  const within = (times: readonly number[] | undefined, at: number) =>
    (times ?? []).some((t) => Math.abs(t - at) <= SLACK_MS);
  const buildsOf = new Map<number, { from: number; to: number }[]>();
  for (const build of builds.values()) buildsOf.set(build.leaseId, [...(buildsOf.get(build.leaseId) ?? []), build]);
  /**
   * Waiting in the pass at `at` and tried by it: visible to it, neither granted nor ended around
   * it, not held by its own update (a release), and not building a resource of its own (such a
   * lease holds nothing back: the next one may build or find its own).
   */
  const waitingAt = (lease: LeaseRow, at: number) => {
    const end = ended.get(lease.id);
    return (
      lease.gangId === null &&
      lease.createdAt.getTime() < at - SLACK_MS &&
      !(acquired.get(lease.id) ?? []).some((t) => t <= at + SLACK_MS) &&
      (end === undefined || end > at + SLACK_MS) &&
      !within(releaseAsked.get(lease.id), at) &&
      !(buildsOf.get(lease.id) ?? []).some((b) => b.from <= at + SLACK_MS && b.to >= at - SLACK_MS)
    );
  };
  const demand = (lease: LeaseRow) =>
    `${lease.resourceType}|${JSON.stringify(lease.attributes)}|${lease.allowedBlueprintIds.join(',')}`;
  const waitingOfType = new Map<string, LeaseRow[]>();
  for (const lease of leases.values())
    if (lease.gangId === null)
      waitingOfType.set(lease.resourceType, [...(waitingOfType.get(lease.resourceType) ?? []), lease]);
  const blueprintOf = new Map((history.resources ?? []).map((r) => [r.id, r.blueprintId]));

  /**
   * The gangs waiting in the pass at `at` that had aged: visible to it, none of their parts granted,
   * ended or asked to release around it (a part held by its own update makes the gang wait), and
   * their owner without a quota (a gang over its owner's quota waits for that, not for capacity).
   */
  const agedGangsAt = (type: string, at: number) =>
    [...gangs.values()].filter((parts) => {
      const first = parts[0]!;
      return (
        first.resourceType === type &&
        rules.quota(first.ownerId, type) === null &&
        at - first.createdAt.getTime() >= rules.agingIntervalMs + SLACK_MS &&
        parts.every((p) => {
          const end = ended.get(p.id);
          return (
            p.resourceType === type &&
            !(acquired.get(p.id) ?? []).some((t) => t <= at + SLACK_MS) &&
            (end === undefined || end > at + SLACK_MS) &&
            !within(releaseAsked.get(p.id), at)
          );
        })
      );
    });

  for (const pass of passes.values()) {
    const when = new Date(pass.at).toISOString();
    for (let i = 1; i < pass.grants.length; i++) {
      const [before, after] = [pass.grants[i - 1]!, pass.grants[i]!];
      if (band(after, pass.at) > band(before, pass.at))
        add(
          `pass at ${when} granted lease ${after.id} (band ${band(after, pass.at)}) after lease ${before.id} (band ${band(before, pass.at)})`,
        );
    }
    // One owner's grants: fair share is the same for all of them, so band then arrival decide.
    const lastOf = new Map<number | null, LeaseRow>();
    for (const granted of pass.grants) {
      const last = lastOf.get(granted.ownerId);
      if (last && granted.gangId === null && last.gangId === null && ahead(granted, last, pass.at))
        add(
          `pass at ${when} granted lease ${granted.id} after lease ${last.id} of the same owner, which it is ahead of`,
        );
      lastOf.set(granted.ownerId, granted);
    }
    const grantedHere = new Set(pass.grants.map((l) => l.id));
    for (const granted of pass.grants) {
      const resourceId = pass.resources.get(granted.id);
      const blueprintId = resourceId == null ? undefined : blueprintOf.get(resourceId);
      const couldUse = (other: LeaseRow) =>
        (granted.gangId === null && demand(other) === demand(granted)) ||
        (rules.fits !== undefined && blueprintId !== undefined && rules.fits(other, blueprintId));
      for (const other of waitingOfType.get(granted.resourceType) ?? []) {
        if (!couldUse(other)) continue;
        if (grantedHere.has(other.id) || !ahead(other, granted, pass.at) || !waitingAt(other, pass.at)) continue;
        // Another owner's lease may be held back by that owner's quota.
        if (other.ownerId !== granted.ownerId && rules.quota(other.ownerId, other.resourceType) !== null) continue;
        const aged = pass.at - other.createdAt.getTime() >= rules.agingIntervalMs;
        add(
          `pass at ${when} gave lease ${granted.id} (band ${band(granted, pass.at)}) what lease ${other.id} (band ${band(other, pass.at)}${aged ? ', past the aging bound' : ''}), waiting ahead of it, could use`,
        );
      }
    }
    // An aged gang reserves what frees: nothing of its type goes to a lower band meanwhile.
    const lowest = pass.grants.reduce<LeaseRow | null>(
      (low, l) => (l.gangId === null && (!low || band(l, pass.at) < band(low, pass.at)) ? l : low),
      null,
    );
    if (lowest)
      for (const parts of agedGangsAt(pass.type, pass.at))
        if (band(parts[0]!, pass.at) > band(lowest, pass.at))
          add(
            `pass at ${when} gave lease ${lowest.id} (band ${band(lowest, pass.at)}) capacity while gang ${parts[0]!.gangId} (band ${band(parts[0]!, pass.at)}, past the aging bound) waited for it`,
          );
  }
  return problems;
}
