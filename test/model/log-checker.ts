import type { LeaseStatus, ResourceStatus } from '../../src/generated/prisma/client.js';
import { canLeaseTransition, canResourceTransition } from '../../src/allocator/state-machines.js';

// Replays the Log table in id order and checks the invariants that hold at every moment. Id order
// is commit order for everything checked here: a slot lock is inserted before the log of the step
// that took it and deleted before the log of the step that gave it up, and an insert on a key
// whose deletion is not committed yet waits for that commit, so the next holder's log always gets
// a later id than the previous holder's last one.

export interface LogRow {
  id: bigint;
  type: string;
  leaseId: number | null;
  resourceId: number | null;
  blueprintId: number | null;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface BlueprintRules {
  /** One lease at a time per resource. */
  exclusive: boolean;
  /** At most this many live (allocated, not yet destroyed) resources at once. */
  limit: number | null;
}

export interface LeaseTrack {
  status: LeaseStatus;
  path: LeaseStatus[];
  resourceId: number | null;
  /** Every resource it ever sat on. */
  resources: Set<number>;
  releaseReason: string | null;
  releasedAt: Date | null;
  /**
   * Its resource had already left PENDING/ACTIVE when the lease was released, or the lease had
   * left a resource that went away (reacquired): that resource's release command may arrive
   * after the lease moved on, and releasing it then is what the spec says.
   */
  resourceGoneAtRelease: boolean;
  leftGoneResource: boolean;
  brokenReason: string | null;
  /** Broke with (or logged) `no-blueprints`, `no-authorizations` or `cannot-ever-allocate`. */
  refused: boolean;
}

export interface ResourceTrack {
  status: ResourceStatus;
  path: ResourceStatus[];
  blueprintId: number;
  releaseReason: string | null;
}

const leaseTargets: Readonly<Record<string, LeaseStatus>> = {
  'lease-acquired': 'ACQUIRED',
  'lease-activated': 'ACTIVE',
  'lease-released': 'RELEASED',
  'lease-reacquiring': 'PENDING',
  'lease-broken': 'BROKEN',
  'lease-destroyed': 'DESTROYED',
};

const resourceTargets: Readonly<Record<string, ResourceStatus>> = {
  'resource-activated': 'ACTIVE',
  'resource-released': 'RELEASED',
  'resource-broken': 'BROKEN',
  'resource-destroyed': 'DESTROYED',
};

const refusals = new Set(['no-blueprints', 'no-authorizations', 'cannot-ever-allocate']);
const resourceLive = (status: ResourceStatus | undefined) => status === 'PENDING' || status === 'ACTIVE';

export class LogChecker {
  readonly violations: string[] = [];
  readonly leases = new Map<number, LeaseTrack>();
  readonly resources = new Map<number, ResourceTrack>();
  /** Exclusive resource → the lease holding its slot (from acquisition until destroy or reacquire). */
  private readonly holder = new Map<number, number>();
  /** Resource → leases ACQUIRED or ACTIVE on it. */
  private readonly onResource = new Map<number, Set<number>>();
  private readonly live = new Map<number, number>();
  /** Highest number of live resources seen per blueprint. */
  readonly peak = new Map<number, number>();
  /** A resource-level slot (a host-pool binding) → the live resource holding it. */
  private readonly slots = new Map<string, number>();
  private lastId: bigint | null = null;
  logs = 0;

  constructor(
    private readonly rules: (blueprintId: number) => BlueprintRules | undefined,
    private readonly resourceSlot: (resourceId: number) => string | undefined = () => undefined,
  ) {}

  private violate(log: LogRow, message: string): void {
    // A broken run can repeat one fault thousands of times; the first ones say enough.
    if (this.violations.length < 200) this.violations.push(`log ${log.id} (${log.type}): ${message}`);
  }

  feed(log: LogRow): void {
    this.logs++;
    if (this.lastId !== null && log.id <= this.lastId) this.violate(log, `ids out of order after ${this.lastId}`);
    this.lastId = log.id;
    if (log.type === 'resource-allocated' || log.type in resourceTargets) this.feedResource(log);
    else if (log.leaseId !== null) this.feedLease(log);
  }

  private feedLease(log: LogRow): void {
    const id = log.leaseId!;
    if (log.type === 'lease-requested') {
      if (this.leases.has(id)) return this.violate(log, `lease ${id} requested twice`);
      this.leases.set(id, {
        status: 'PENDING',
        path: ['PENDING'],
        resourceId: null,
        resources: new Set(),
        releaseReason: null,
        releasedAt: null,
        resourceGoneAtRelease: false,
        leftGoneResource: false,
        brokenReason: null,
        refused: false,
      });
      return;
    }
    const lease = this.leases.get(id);
    if (!lease) return this.violate(log, `lease ${id} has a log before lease-requested`);
    if (refusals.has(log.type)) lease.refused = true;
    const to = leaseTargets[log.type];
    if (!to) return;
    if (!canLeaseTransition(lease.status, to))
      this.violate(log, `lease ${id}: ${lease.status} → ${to} is no transition`);
    const from = lease.status;
    lease.status = to;
    lease.path.push(to);

    if (to === 'ACQUIRED' || (to === 'ACTIVE' && from === 'PENDING')) {
      const resourceId = Number(log.data['resourceId'] ?? log.resourceId);
      this.take(log, id, lease, resourceId, to);
    } else if (to === 'ACTIVE') {
      const resource = lease.resourceId === null ? undefined : this.resources.get(lease.resourceId);
      if (resource?.status !== 'ACTIVE')
        this.violate(log, `lease ${id} activated on resource ${lease.resourceId} which is ${resource?.status}`);
    } else if (to === 'RELEASED' || to === 'BROKEN') {
      this.leaveResource(id, lease);
      if (to === 'RELEASED') {
        lease.releaseReason = String(log.data['reason']);
        lease.releasedAt = log.createdAt;
        lease.resourceGoneAtRelease =
          lease.leftGoneResource ||
          (lease.resourceId !== null && !resourceLive(this.resources.get(lease.resourceId)?.status));
      } else {
        lease.brokenReason = String(log.data['reason']);
        if (refusals.has(lease.brokenReason)) lease.refused = true;
      }
    } else if (to === 'PENDING' || to === 'DESTROYED') {
      if (to === 'PENDING' && lease.resourceId !== null && !resourceLive(this.resources.get(lease.resourceId)?.status))
        lease.leftGoneResource = true;
      this.leaveResource(id, lease);
      if (lease.resourceId !== null && this.holder.get(lease.resourceId) === id) this.holder.delete(lease.resourceId);
      if (to === 'PENDING') lease.resourceId = null;
    }
  }

  private take(log: LogRow, id: number, lease: LeaseTrack, resourceId: number, to: LeaseStatus): void {
    const resource = this.resources.get(resourceId);
    if (!resource) return this.violate(log, `lease ${id} took resource ${resourceId}, which was never allocated`);
    const open = to === 'ACTIVE' ? resource.status === 'ACTIVE' : resourceLive(resource.status);
    if (!open) this.violate(log, `lease ${id} became ${to} on resource ${resourceId}, which is ${resource.status}`);
    lease.resourceId = resourceId;
    lease.resources.add(resourceId);
    const on = this.onResource.get(resourceId) ?? new Set<number>();
    on.add(id);
    this.onResource.set(resourceId, on);
    if (!this.rules(resource.blueprintId)?.exclusive) return;
    const current = this.holder.get(resourceId);
    if (current !== undefined && current !== id)
      this.violate(log, `exclusive resource ${resourceId}: lease ${id} took it while lease ${current} held it`);
    this.holder.set(resourceId, id);
  }

  private leaveResource(id: number, lease: LeaseTrack): void {
    if (lease.resourceId !== null) this.onResource.get(lease.resourceId)?.delete(id);
  }

  private feedResource(log: LogRow): void {
    const id = log.resourceId;
    if (id === null) return this.violate(log, 'a resource log without a resource');
    if (log.type === 'resource-allocated') {
      if (this.resources.has(id)) return this.violate(log, `resource ${id} allocated twice`);
      if (log.blueprintId === null) return this.violate(log, `resource ${id} allocated without a blueprint`);
      this.resources.set(id, {
        status: 'PENDING',
        path: ['PENDING'],
        blueprintId: log.blueprintId,
        releaseReason: null,
      });
      const live = (this.live.get(log.blueprintId) ?? 0) + 1;
      this.live.set(log.blueprintId, live);
      this.peak.set(log.blueprintId, Math.max(live, this.peak.get(log.blueprintId) ?? 0));
      const limit = this.rules(log.blueprintId)?.limit ?? null;
      if (limit !== null && live > limit)
        this.violate(log, `blueprint ${log.blueprintId} has ${live} live resources, over its limit of ${limit}`);
      const slot = this.resourceSlot(id);
      if (slot !== undefined) {
        const other = this.slots.get(slot);
        if (other !== undefined) this.violate(log, `resource ${id} took ${slot} while resource ${other} held it`);
        this.slots.set(slot, id);
      }
      return;
    }
    const resource = this.resources.get(id);
    if (!resource) return this.violate(log, `resource ${id} has a log before resource-allocated`);
    const to = resourceTargets[log.type]!;
    if (!canResourceTransition(resource.status, to))
      this.violate(log, `resource ${id}: ${resource.status} → ${to} is no transition`);
    resource.status = to;
    resource.path.push(to);
    if (to === 'RELEASED') resource.releaseReason = String(log.data['reason']);
    if (to === 'RELEASED' && log.data['reason'] === 'reclaimed') {
      const on = [...(this.onResource.get(id) ?? [])];
      if (on.length > 0) this.violate(log, `resource ${id} reclaimed while leases ${on.join(', ')} were on it`);
    }
    if (to === 'DESTROYED') {
      const on = [...(this.onResource.get(id) ?? [])];
      if (on.length > 0) this.violate(log, `resource ${id} destroyed while leases ${on.join(', ')} were on it`);
      this.live.set(resource.blueprintId, (this.live.get(resource.blueprintId) ?? 0) - 1);
      const slot = this.resourceSlot(id);
      if (slot !== undefined && this.slots.get(slot) === id) this.slots.delete(slot);
    }
  }

  /**
   * After the replay: the statuses in the tables must be where the logs left each object, every
   * object must have been born in the log, and, once settled, every lease is destroyed exactly once
   * and every resource still standing is idle.
   */
  finish(
    final: { leases: ReadonlyMap<number, LeaseStatus>; resources: ReadonlyMap<number, ResourceStatus> },
    settled: boolean,
  ): string[] {
    const problems = [...this.violations];
    const add = (message: string) => problems.length < 400 && problems.push(message);
    for (const [id, status] of final.leases) {
      const lease = this.leases.get(id);
      if (!lease) add(`lease ${id} (${status}) has no lease-requested log`);
      else if (lease.status !== status) add(`lease ${id} is ${status} but its log ends at ${lease.status}`);
    }
    for (const [id, status] of final.resources) {
      const resource = this.resources.get(id);
      if (!resource) add(`resource ${id} (${status}) has no resource-allocated log`);
      else if (resource.status !== status) add(`resource ${id} is ${status} but its log ends at ${resource.status}`);
    }
    for (const id of this.leases.keys()) if (!final.leases.has(id)) add(`lease ${id} is in the log but not the table`);
    if (!settled) return problems;
    for (const [id, lease] of this.leases) {
      const destroyed = lease.path.filter((s) => s === 'DESTROYED').length;
      if (destroyed !== 1 || lease.status !== 'DESTROYED') add(`lease ${id} did not settle: ${lease.path.join(' → ')}`);
    }
    for (const [id, resource] of this.resources) {
      if (resource.status === 'DESTROYED') continue;
      if (resource.status !== 'ACTIVE') add(`resource ${id} did not settle: ${resource.path.join(' → ')}`);
      const on = [...(this.onResource.get(id) ?? [])];
      if (on.length > 0) add(`resource ${id} still has leases ${on.join(', ')} on it`);
    }
    return problems;
  }
}
