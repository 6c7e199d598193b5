import type { Lease } from '../../generated/prisma/client.js';
import { backoffDelayMs } from '../backoff.js';
import type { TxContext } from '../context.js';
import { schedulePass } from '../jobs.js';
import { breakLease } from '../lease-end.js';
import { patientRetryAt, type Blocker } from '../waiting.js';
import type { Demand } from '../demand.js';
import type { AllocationView } from '../allocation-view.js';
import { live, serveGang } from './plan.js';
import { PoolViews } from './pool.js';
import { PolicyQueue, type PolicySettings } from './policy-order.js';
import { waitEndsAt, waitsUnchanged } from './capacity-epoch.js';
import { readGangs, readsFurther, type Gangs, type OwnerRow } from './read.js';
import { quotaBlocker } from './quota.js';
import { gangQuotaBlocker } from './gang-quota.js';
import type { Unit } from './types.js';
import { PassGrants, writeBlockers, type Blocked } from './write.js';
import { MOVED, REFUSED, WatchedTx } from './watched-tx.js';
import { PassedOverLeases } from './passed-over.js';
import { StopBand } from './stop-band.js';
import { building, InOrderTries, type InOrder, type PassInProgress } from './in-order.js';

export interface Served {
  /** More may wait than were read. */
  mayHaveMore: boolean;
  leftWaiting: boolean;
  granted: number;
  /** The demand of the pass's first grant to a lease that never waited (see pass.ts, expectDemand). */
  firstDemand: Demand | null;
}

/**
 * The leases of one pass, in policy order: greedy, with backfill (a lease that cannot be served
 * does not hold back others, except past the stop band an aged failure sets), fair share counted
 * with this pass's grants, quotas checked before anything is tried.
 */
export async function serve(
  txCtx: TxContext,
  resourceType: string,
  turn: { epoch: number; mark: string | null },
  heads: Lease[],
  owners: Map<number, OwnerRow>,
  ahead?: { demand: Demand; view: AllocationView },
): Promise<Served> {
  const batch = new PassGrants();
  const watched = new WatchedTx(txCtx.tx);
  const ctx: TxContext = { ...txCtx, tx: watched, grants: batch };
  const pool = new PoolViews();
  if (ahead) pool.seed(ahead.demand, ahead.view);
  const pass: PassInProgress = { ctx, resourceType, turn, batch, watched, pool, passed: new PassedOverLeases() };
  // The units' owners are their heads' (a gang's unit is its head's): readHeads read them.
  const { units, gangs } = await unitsOf(ctx, resourceType, heads);
  // The view read ahead was read after the turn, in the same round trip.
  const tries = new InOrderTries(pass, ahead !== undefined && ahead.view.capacityMark === turn.mark);
  return new Serving(pass, tries, units, gangs, owners).run(heads);
}

/** The heads as units of the order: single leases, and each gang once, with all its parts. */
async function unitsOf(ctx: TxContext, resourceType: string, heads: Lease[]) {
  const gangIds = [...new Set(heads.flatMap((l) => (l.gangId === null ? [] : [l.gangId])))];
  const gangs = await readGangs(ctx, resourceType, gangIds);
  const units: Unit[] = [];
  const seen = new Set<number>();
  for (const lease of heads) {
    const base = { id: lease.id, priority: lease.priority, createdAt: lease.createdAt, ownerId: lease.ownerId, lease };
    if (lease.gangId === null) {
      units.push({ ...base, size: 1 });
      continue;
    }
    if (seen.has(lease.gangId)) continue;
    seen.add(lease.gangId);
    const parts = gangs.parts.get(lease.gangId) ?? [];
    units.push({ ...base, size: parts.length, parts });
  }
  return { units, gangs };
}

/** What a unit's turn in the order came to: on to the next, or the pass stops here. */
type Step = 'next' | 'stop';

/** One pass's walk through its order (see serve). */
class Serving {
  private readonly queue: PolicyQueue<Unit>;
  private readonly stopBand: StopBand;
  /** Leases granted in this pass per owner (-1: leases with no owner). */
  private readonly grants = new Map<number, number>();
  private readonly grantedIds = new Set<number>();
  /** Heads the pass ended without a grant (broken). */
  private readonly endedIds = new Set<number>();
  private readonly blocked: Blocked[] = [];
  private firstDemand: Demand | null = null;
  /** Leases refused in this epoch are refused again without a try, until capacity is seen to free. */
  private skipping = true;
  /** The pass stopped before the end of its order (see takeBack). */
  private stopped = false;

  constructor(
    private readonly pass: PassInProgress,
    private readonly tries: InOrderTries,
    units: Unit[],
    private readonly gangs: Gangs,
    private readonly owners: Map<number, OwnerRow>,
  ) {
    const settings: PolicySettings = { agingIntervalMs: pass.ctx.deps.options.agingIntervalMs };
    this.queue = new PolicyQueue(units, owners, pass.ctx.now, settings);
    this.stopBand = new StopBand(pass.ctx.now, settings);
  }

  async run(heads: readonly Lease[]): Promise<Served> {
    const { ctx, resourceType, batch, passed } = this.pass;
    for (let unit = this.queue.next(); unit; unit = this.queue.next()) {
      const leases = unit.parts ?? [unit.lease];
      const unitBand = this.queue.bandOf(unit);
      if (!this.stopBand.allows(unitBand)) {
        this.block(leases, this.stopBand.blocker);
        continue;
      }
      // A gang's quotas are looked at once it is had whole, with the turns of all its types.
      const atQuota = unit.parts ? null : this.overQuota(unit, 1);
      if (atQuota) {
        this.block(leases, atQuota);
        continue;
      }
      const step = unit.parts
        ? await this.serveGang(unit, unit.parts, unitBand)
        : await this.serveSingle(unit, unitBand);
      if (step === 'stop') break;
    }
    if (this.stopped) schedulePass(ctx, resourceType, ctx.now, { capacity: false });
    await batch.finish(ctx);
    this.blocked.push(...passed.queuedBehind());
    await writeBlockers(ctx, this.blocked);
    const left = new Set([...this.grantedIds, ...this.endedIds]);
    return {
      mayHaveMore: readsFurther(heads, left),
      leftWaiting: heads.some((lease) => !this.grantedIds.has(lease.id)),
      granted: passed.served,
      firstDemand: this.firstDemand,
    };
  }

  private async serveSingle(unit: Unit, unitBand: number): Promise<Step> {
    const { ctx, resourceType, turn, pool, passed } = this.pass;
    const ahead = passed.firstOfDemand(unit.lease);
    if (ahead !== undefined) {
      passed.queueBehind(unit, ahead);
      return 'next';
    }
    if (this.skipping && waitsUnchanged(unit.lease, turn.epoch, ctx.now)) {
      // Refused in this epoch for want of capacity, none of which has freed since as far as the
      // pass has seen: refused again, as a try would be, without the try. Its wait's safety net
      // stands, and so does the time its wait ends on its own, if it has one.
      schedulePass(ctx, resourceType, patientRetryAt(ctx, waitEndsAt(unit.lease)), { capacity: false });
      passed.refuseUntried(unit, turn.mark);
      this.stopBand.refused(unit, unitBand);
      return 'next';
    }
    const first = passed.skipped.length > 0 ? await this.tries.withSkippedAhead(unit.lease) : REFUSED;
    const after: InOrder = first === REFUSED ? await this.tries.serve(unit.lease) : first;
    if (after === 'again' || after === MOVED) return this.takeBack(unit);
    if ('keptFor' in after) this.block([unit.lease], { reason: 'reserved', leaseId: after.keptFor });
    else if (live(after)) {
      this.grant(unit, 1);
      if (unit.lease.blocker === null) this.firstDemand ??= unit.lease;
    }
    // A lease waiting for the resource it is building holds nothing back: the next one of its
    // demand may build or find its own.
    else if (after.status === 'PENDING' && !building(after)) {
      passed.refuse(unit, after, pool.lastView);
      this.stopBand.refused(unit, unitBand);
    } else if (after.status !== 'PENDING') this.endedIds.add(after.id);
    return 'next';
  }

  private async serveGang(unit: Unit, parts: Lease[], unitBand: number): Promise<Step> {
    const { ctx, resourceType, batch, pool, passed } = this.pass;
    const gangId = unit.lease.gangId!;
    const ended = parts.filter((p) => p.status === 'RELEASED' || p.status === 'BROKEN' || p.status === 'DESTROYED');
    if (ended.length > 0 && parts.every((p) => !live(p))) {
      // A part ended while waiting (its wait timed out, it was released): the gang ends with it.
      const message = `part ${ended[0]!.id} of the gang ended (${ended[0]!.statusReason ?? ended[0]!.status})`;
      for (const part of parts.filter((p) => p.status === 'PENDING'))
        await breakLease(ctx, part, 'gang-part-ended', message);
      for (const part of parts) this.endedIds.add(part.id);
      return 'next';
    }
    const whole = parts.length === this.gangs.sizes.get(gangId) && parts.every((p) => p.status === 'PENDING');
    if (!whole || !parts.every((p) => this.gangs.turns.has(p.resourceType))) {
      // A part busy with its own update, or another type's pass running: look again soon.
      this.block(parts, { reason: 'gang-busy', gangId });
      schedulePass(ctx, resourceType, new Date(ctx.now.getTime() + backoffDelayMs(1, ctx.deps.options)));
      return 'next';
    }
    const owner = unit.ownerId === null ? undefined : this.owners.get(unit.ownerId);
    const held = {
      resourceType,
      quota: owner?.quota ?? null,
      live: (owner?.live ?? 0) + (this.grants.get(owner?.id ?? -1) ?? 0),
    };
    const overQuotas = await gangQuotaBlocker(ctx, held, unit.ownerId, parts);
    if (overQuotas) {
      this.block(parts, overQuotas);
      return 'next';
    }
    // The gang reads the pool from the database, whatever freed since the turn: leases skipped
    // ahead of it go first.
    if (passed.skipped.length > 0) return this.takeBack(unit);
    // What this pass granted must be there first.
    await batch.flush(ctx);
    const verdict = { hold: undefined as number | undefined };
    const others = passed.othersAhead(null);
    const outcome = await serveGang(
      ctx,
      parts,
      others.length === 0 ? undefined : (got) => this.tries.keepGang(unit, got, others, verdict),
    );
    pool.forget();
    if (outcome.kind === 'undone' && verdict.hold !== undefined) {
      this.block(parts, { reason: 'reserved', leaseId: verdict.hold });
      schedulePass(ctx, resourceType);
    } else if (outcome.kind === 'undone') return this.takeBack(unit);
    else if (outcome.kind === 'granted') this.grant(unit, parts.length);
    else if (outcome.kind === 'failed') {
      const message = `part ${outcome.part.id} cannot be served: ${outcome.part.statusReason ?? 'broken'}`;
      for (const part of parts) {
        await breakLease(ctx, part, 'gang-part-failed', message);
        this.endedIds.add(part.id);
      }
    } else {
      this.block(parts, { reason: 'gang-waiting', gangId, leaseId: outcome.part.id, part: outcome.part.blocker });
      this.stopBand.refused(unit, unitBand);
    }
    return 'next';
  }

  /**
   * Capacity may have freed since the leases passed over since the pass's last grant were refused:
   * a view shows a capacity mark other than the turn's epoch (the skipped leases were refused
   * without a try), or a probe found what they were refused (InOrderTries.serve). What freed would
   * go to a lease behind them. `unit` goes back into the order first, then every one of them (the
   * skipped ones, those queued behind them, which were never tried, and those refused since) ahead
   * of it, to be tried in turn, with the shares this pass's grants move; nothing more is skipped in
   * this pass. (Found by the model check with process kills: served alone, a skipped lease left
   * the lease queued behind it untried, and a newer lease of another demand took what it could
   * use.) If a lease behind a skipped one has been granted already, serving it now would put the
   * pass's grants out of order: the pass stops there instead, and the next one, right after it,
   * starts with them in a new epoch.
   */
  private takeBack(unit: Unit): Step {
    this.queue.putBack(unit);
    this.skipping = false;
    const again = this.pass.passed.takeBack();
    if (again === null) {
      this.stopped = true;
      return 'stop';
    }
    for (const entry of [...again].reverse()) this.queue.putBack(entry.unit);
    this.stopBand.forget(new Set(again.map((entry) => entry.unit)));
    return 'next';
  }

  private block(leases: readonly Lease[], blocker: Blocker): void {
    this.blocked.push(...leases.map((lease) => ({ lease, blocker })));
  }

  private overQuota(unit: Unit, count: number): Blocker | null {
    const owner = unit.ownerId === null ? undefined : this.owners.get(unit.ownerId);
    return owner ? quotaBlocker(owner.quota, owner.live + (this.grants.get(owner.id) ?? 0), count) : null;
  }

  private grant(unit: Unit, count: number): void {
    // Shares and quotas are of this type: a gang's parts of other types count under theirs.
    const { resourceType, passed } = this.pass;
    const ofType = unit.parts ? unit.parts.filter((part) => part.resourceType === resourceType).length : count;
    this.queue.granted(unit, ofType);
    this.grants.set(unit.ownerId ?? -1, (this.grants.get(unit.ownerId ?? -1) ?? 0) + ofType);
    passed.served += count;
    for (const lease of unit.parts ?? [unit.lease]) this.grantedIds.add(lease.id);
  }
}
