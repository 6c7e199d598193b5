import type { Lease } from '../../generated/prisma/client.js';
import type { JobClaim } from '../../queue/port.js';
import { backoffDelayMs } from '../backoff.js';
import type { AllocatorDeps, TxContext } from '../context.js';
import { inUpdateTransaction } from '../transaction.js';
import { scheduleJob, schedulePass } from '../jobs.js';
import { breakLease } from '../lease-end.js';
import { patientRetryAt, type Blocker } from '../waiting.js';
import { demandKey, type Demand } from '../demand.js';
import { demandView, type AllocationView } from '../allocation-view.js';
import { keepTrial, serveGang, serveLease, trialOf } from './plan.js';
import { couldUse, takenBy, type Taken } from './could-use.js';
import { PoolViews } from './pool.js';
import { aged, mayServe, PolicyQueue, stopBandAfterFailure, type PolicySettings } from './policy-order.js';
import { waitEndsAt, waitsUnchanged } from './capacity-epoch.js';
import { nothingWaiting } from './idle-queues.js';
import {
  capacityMark,
  capacityMarkRead,
  HEADS_PER_DEMAND,
  markOf,
  readGangs,
  readHeads,
  SHAPES_PER_PASS,
  takeTurn,
  type OwnerRow,
} from './read.js';
import { quotaBlocker } from './quota.js';
import { gangQuotaBlocker } from './gang-quota.js';
import type { Unit } from './types.js';
import { PassGrants, writeBlockers, type Blocked } from './write.js';
import { MOVED, REFUSED, WatchedTx, type MarkCheck } from './watched-tx.js';

/**
 * The scheduling pass of one resource type (drydock-spec.md, "Scheduling"): the writer of the
 * type's PENDING leases. Holds the type's turn, reads the heads of its queue, takes them in policy
 * order (policy-order.ts) and serves each it may; requests and freed capacity ask for a pass, and
 * one asked for while this runs runs once more right after (the job's rerun flag), so that
 * everything that arrived meanwhile is served together by the next.
 */
export async function runSchedulingPass(deps: AllocatorDeps, queueId: number, claim?: JobClaim): Promise<void> {
  // A request starting its own pass (it carries the request's event) has a lease waiting for sure;
  // a pass asked for again while the one before it ran most likely has one too (a request came).
  const idle = deps.idleQueues;
  if (idle?.has(queueId) && !claim?.carried && !claim?.continues && (await nothingWaiting(deps.db, queueId, claim)))
    return;
  let passType: string | null = null;
  let granted = 0;
  const started = performance.now();
  await inUpdateTransaction(
    deps,
    async (ctx) => {
      // Nothing of the pass runs after its transaction.
      ctx.endsJob = true;
      const { turn, heads, skipped, owners, ahead } = await turnAndHeads(ctx, queueId);
      if (turn === null) return;
      const { resourceType, epoch } = turn;
      passType = resourceType;
      ctx.capacityEpoch = { resourceType, epoch };
      const served = await serve(ctx, resourceType, turn, heads, owners, ahead);
      granted = served.granted;
      ctx.onCommit?.push(() => expectDemand(deps, queueId, served.firstDemand));
      const leftWaiting = served.leftWaiting || served.mayHaveMore || skipped > 0;
      ctx.onCommit?.push(() => idle?.record(queueId, leftWaiting));
      if (served.mayHaveMore) schedulePass(ctx, resourceType, ctx.now, { capacity: false });
      // A head another transaction held was left to it; should that one die before committing,
      // nothing else would bring this type's pass back for it.
      else if (skipped > 0)
        schedulePass(ctx, resourceType, new Date(ctx.now.getTime() + backoffDelayMs(1, ctx.deps.options)), {
          capacity: false,
        });
      // This pass's own job: a request for it becomes the time its completion leaves it due. What
      // the pass asks of its own type carries no capacity: a pass frees none for its own leases
      // (the leases it breaks held nothing), and what it tried it tried after every mark it read.
      const again = ctx.passes.get(resourceType);
      if (again) {
        ctx.passes.delete(resourceType);
        scheduleJob(ctx, 'SCHEDULING_PASS', queueId, again.runAt);
      }
    },
    claim,
  );
  if (passType === null) return;
  deps.passPacing?.ended(passType);
  deps.passes?.passed({ resourceType: passType, seconds: (performance.now() - started) / 1_000, granted });
}

/**
 * The type's turn, then its heads. Once this process knows the queue's type, both statements are
 * sent at once, one round trip: PostgreSQL runs the heads' read after the turn is taken, in a
 * snapshot of its own, so it sees every commit the turn waited for. So is, when the last pass
 * granted a lease that never waited, the view of that lease's demand (`ahead`): most passes
 * serve the demand the one before served, and its first lease need not read the pool in a
 * round trip of its own.
 */
async function turnAndHeads(ctx: TxContext, queueId: number) {
  const known = ctx.deps.queueTypes?.get(queueId);
  if (known === undefined) {
    const turn = await takeTurn(ctx, queueId);
    if (turn === null) return { turn, heads: [], skipped: 0, owners: new Map<number, OwnerRow>(), ahead: undefined };
    ctx.deps.queueTypes?.set(queueId, turn.resourceType);
    return { turn, ...(await readHeads(ctx, turn.resourceType)), ahead: undefined };
  }
  const demand = ctx.deps.passDemands?.get(queueId);
  const [turn, read, view] = await Promise.all([
    takeTurn(ctx, queueId),
    readHeads(ctx, known),
    demand ? demandView(ctx, known, demand) : undefined,
  ]);
  return { turn, ...read, ahead: demand && view ? { demand, view } : undefined };
}

/**
 * What the next pass of the queue reads ahead (see turnAndHeads): the demand of this one's first
 * grant to a lease that never waited; none when it granted none, so that a queue whose leases
 * all wait does not read a view no lease uses on every pass.
 */
function expectDemand(deps: AllocatorDeps, queueId: number, demand: Demand | null): void {
  if (demand) deps.passDemands?.set(queueId, demand);
  else deps.passDemands?.delete(queueId);
}

const isLive = (lease: Lease) => lease.status === 'ACQUIRED' || lease.status === 'ACTIVE';

/** Why a lease is refused when what it lacks is capacity another lease of its demand could get. */
const CAPACITY_REASONS = new Set(['no-capacity', 'slot-lock-failure', 'draining', 'waiting-for-reclaim']);
const waitsForCapacity = (lease: Lease) =>
  CAPACITY_REASONS.has((lease.blocker as { reason?: string } | null)?.reason ?? '');
/** Waiting for the resource it is building, a lease holds nothing back (see serve). */
const building = (lease: Lease) =>
  (lease.blocker as { reason?: string } | null)?.reason === 'waiting-for-resource-activation';

/**
 * A single lease not served so far in a pass, failed or queued behind a failure, with the pass's
 * grant count when it was passed over, and whether what it waits for is capacity: as its own try
 * found, or, untried (queued behind the first of its demand, or refused without a try in the
 * capacity epoch), as the lease it waits behind was found. Its `lease.blocker` is what a pass
 * before this one wrote until it is tried.
 */
interface PassedOver {
  unit: Unit;
  lease: Lease;
  grantsBefore: number;
  capacity: boolean;
  /** The capacity mark its refusal saw: of its view when tried, of the turn when skipped. */
  mark: string | null | undefined;
  /** The blueprints its view let it use; null when not known (not tried): any. */
  blueprintIds: readonly number[] | null;
  /**
   * Refused in the capacity epoch without a try, or queued behind one that was: capacity freed
   * for it is what a newer mark announces (see retryPassedOver), not what a probe finds.
   */
  untried: boolean;
}

/** Tries of one lease against leases refused ahead of it in one pass (see serveInOrder). */
const PROBE_ROUNDS = 4;

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

/**
 * The leases of one pass, in policy order: greedy, with backfill (a lease that cannot be served
 * does not hold back others, except past the stop band an aged failure sets), fair share counted
 * with this pass's grants, quotas checked before anything is tried. Returns whether more may
 * wait than were read.
 */
async function serve(
  txCtx: TxContext,
  resourceType: string,
  turn: { epoch: number; mark: string | null },
  heads: Lease[],
  owners: Map<number, OwnerRow>,
  ahead?: { demand: Demand; view: AllocationView },
): Promise<{ mayHaveMore: boolean; leftWaiting: boolean; granted: number; firstDemand: Demand | null }> {
  const batch = new PassGrants();
  const watched = new WatchedTx(txCtx.tx);
  const ctx: TxContext = { ...txCtx, tx: watched, grants: batch };
  const settings: PolicySettings = { agingIntervalMs: ctx.deps.options.agingIntervalMs };
  // The units' owners are their heads' (a gang's unit is its head's): readHeads read them.
  const { units, gangs } = await unitsOf(ctx, resourceType, heads);
  const queue = new PolicyQueue(units, owners, ctx.now, settings);
  const grants = new Map<number, number>();
  const failedDemand = new Map<string, number>();
  /** Single leases not served so far in this pass, in order. */
  const passedOver: PassedOver[] = [];
  const grantedIds = new Set<number>();
  /** Heads the pass ended without a grant (broken). */
  const endedIds = new Set<number>();
  const blocked: Blocked[] = [];
  let stopBand = -Infinity;
  let stopLease = 0;
  let served = 0;
  const pool = new PoolViews();
  if (ahead) pool.seed(ahead.demand, ahead.view);
  /**
   * The pass's statement count when it last saw the type's capacity mark still the turn's, or
   * null: nothing the pass had read by then shows capacity freed since the turn. The view read
   * ahead was read after the turn, in the same round trip.
   */
  let markSeenAt: number | null = ahead !== undefined && ahead.view.capacityMark === turn.mark ? 0 : null;
  /** The demand of the pass's first grant to a lease that never waited (see expectDemand). */
  let firstDemand: Demand | null = null;
  /** Leases refused in this pass without a try (capacity-epoch.ts), in order. */
  let skipped: PassedOver[] = [];
  let skipping = true;
  /** The pass stopped before the end of its order (see retryPassedOver). */
  let stopped = false;
  const block = (leases: readonly Lease[], blocker: Blocker) =>
    blocked.push(...leases.map((lease) => ({ lease, blocker })));
  /** Units refused in this pass, each with its band: what the stop band stands on. */
  const refusals: { unit: Unit; band: number }[] = [];
  const failed = (unit: Unit, leaseBand: number) => {
    refusals.push({ unit, band: leaseBand });
    const next = stopBandAfterFailure(stopBand, leaseBand, aged(unit, ctx.now, settings));
    if (next !== stopBand) [stopBand, stopLease] = [next, unit.id];
  };
  /** The stop band as the refusals of units other than `units` (taken back into the order) set it. */
  const forgetRefusals = (units: ReadonlySet<Unit>) => {
    const kept = refusals.splice(0).filter((refusal) => !units.has(refusal.unit));
    [stopBand, stopLease] = [-Infinity, 0];
    for (const refusal of kept) failed(refusal.unit, refusal.band);
  };
  const overQuota = (unit: Unit, count: number) => {
    const owner = unit.ownerId === null ? undefined : owners.get(unit.ownerId);
    return owner ? quotaBlocker(owner.quota, owner.live + (grants.get(owner.id) ?? 0), count) : null;
  };
  const grantUnit = (unit: Unit, count: number) => {
    // Shares and quotas are of this type: a gang's parts of other types count under theirs.
    const ofType = unit.parts ? unit.parts.filter((part) => part.resourceType === resourceType).length : count;
    queue.granted(unit, ofType);
    grants.set(unit.ownerId ?? -1, (grants.get(unit.ownerId ?? -1) ?? 0) + ofType);
    served += count;
    for (const lease of unit.parts ?? [unit.lease]) grantedIds.add(lease.id);
  };
  const shapeOf = (lease: Lease) => JSON.stringify(lease.attributes ?? {});
  /**
   * The first lease ahead of `lease`, of its attributes but another demand, refused in this pass
   * and still retriable (the first of its own demand to be refused). Its id, or undefined.
   */
  const refusedAhead = (lease: Lease) =>
    passedOver.find((p) => retriable(p, shapeOf(lease)) && failedDemand.get(demandKey(p.lease)) === p.unit.id)?.unit.id;
  /**
   * Only leases passed over since the pass's last grant are offered the pool again: one served
   * now after a grant that came behind it in the order would be granted out of order.
   */
  const retriable = (p: PassedOver, shape: string) => shapeOf(p.lease) === shape && p.grantsBefore === served;
  /**
   * A lease passed over before the pass's last grant that could use whatever `lease` is given (the
   * same attributes and allowed blueprints; refused for want of capacity, not for something of its
   * own such as authorizations): it may no longer be offered the pool in this pass, and `lease`
   * may not take what it would have had. Its id, or undefined.
   */
  const heldAhead = (lease: Lease): number | undefined => {
    const shape = shapeOf(lease);
    const blueprints = lease.allowedBlueprintIds.join(',');
    const held = passedOver.find(
      (p) =>
        p.capacity &&
        shapeOf(p.lease) === shape &&
        !retriable(p, shape) &&
        p.lease.allowedBlueprintIds.join(',') === blueprints,
    );
    return held?.unit.id;
  };
  /** Shapes whose freed capacity waits for the next pass (see serveInOrder). */
  const heldShapes = new Set<string>();
  /**
   * Capacity freed after a lease ahead was refused it, and a grant has come between: serving
   * that lease now would put it out of order, serving this one would give it what the lease
   * ahead could use. Neither; the next pass, right after this one, starts with it.
   */
  const holdFor = (lease: Lease, keptFor: number) => {
    heldShapes.add(shapeOf(lease));
    schedulePass(ctx, resourceType);
    return { keptFor };
  };
  /** What a unit's probe found when it sent the leases refused ahead of it back (see serveInOrder). */
  const probed = new Map<number, { got: string; served: number; rounds: number }>();
  /**
   * The first lease of each demand passed over in this pass after a try and waiting for capacity,
   * but those of `lease`'s attributes and allowed blueprints (refusedAhead and heldAhead keep
   * capacity for them); for a gang (null), all of them. Not those refused without a try in the
   * epoch: their wait is one only a capacity mark ends, and a newer one sends them back first.
   */
  const othersAhead = (lease: Lease | null) => {
    const same = (p: PassedOver) =>
      lease !== null &&
      shapeOf(p.lease) === shapeOf(lease) &&
      p.lease.allowedBlueprintIds.join(',') === lease.allowedBlueprintIds.join(',');
    return passedOver.filter(
      (p) => p.capacity && !p.untried && failedDemand.get(demandKey(p.lease)) === p.unit.id && !same(p),
    );
  };
  /**
   * Which of `others` could use what a try took (could-use.ts). One passed over since the pass's
   * last grant goes first (`again`, see retryPassedOver). One passed over before that grant could
   * be served now only out of order: the capacity waits for the next pass (`hold`), but only if
   * the type's capacity mark has moved since its refusal saw it. Otherwise nothing announced freed
   * capacity since: what was taken was there when it was refused, or opened by a blueprint on its
   * own, which a later pass also finds; holding it anyway would hold it again in every pass for
   * as long as that lease waits.
   */
  const wantedBy = async (others: readonly PassedOver[], taken: readonly Taken[]) => {
    let mark: { now: string | null } | undefined;
    const wanted: { again?: number; hold?: number } = {};
    for (const p of others) {
      const again = p.grantsBefore === served;
      if (again ? wanted.again !== undefined : wanted.hold !== undefined) continue;
      if (!again) {
        mark ??= { now: await capacityMark(ctx, resourceType) };
        if (p.mark === mark.now) continue;
      }
      for (const t of taken) {
        if (!(await couldUse(ctx, p, t))) continue;
        if (again) wanted.again = p.unit.id;
        else wanted.hold = p.unit.id;
        break;
      }
    }
    return wanted;
  };
  /**
   * Serves `lease`; but if leases ahead of it that could use what it gets were refused, they go
   * first. Each lease's view of the pool is read when it is tried, so capacity committed while
   * the pass runs (a raised resource limit, a freed slot) would otherwise go to the first lease
   * tried after it, while the ones refused a moment before waited behind their own stale failure.
   * So the lease is tried in a savepoint: refused, that stands; served, it is rolled back if a
   * lease ahead could use what it got (one of its attributes and another demand: always), and it
   * and the leases passed over since the last grant go back into the order ('again'), to be taken
   * in turn with the shares their grants move (retryPassedOver).
   *
   * When its turn comes again, a try is kept if it gets what the probe before had with no grant
   * between: the leases still refused were offered that and could not use it. Anything else may
   * have freed after their tries (a release committing meanwhile), and would go to this lease while
   * a lease ahead that could use it waited: they go first once more. Found by the model check with
   * process kills: a lease of priority 0 given a slot freed a moment after a lease of priority 2
   * was refused; and, across attributes, by the model check with a read of the pool per try: a
   * gang's part given the resource a single lease ahead was refused a moment before. A release
   * landing between every round is not worth more rounds: then the lease waits for the next pass.
   */
  const serveInOrder = async (lease: Lease): Promise<Lease | { keptFor: number } | 'again' | typeof MOVED> => {
    const keptFor = heldAhead(lease);
    if (keptFor !== undefined && heldShapes.has(shapeOf(lease))) return { keptFor };
    const sameShape = refusedAhead(lease) ?? keptFor;
    const others = othersAhead(lease);
    if (sameShape === undefined && others.length === 0)
      return skipped.length > 0 ? tryWatchingMark(lease) : serveLease(ctx, lease, pool);
    return probeInOrder(lease, keptFor, sameShape, others);
  };
  /**
   * Whether a try that took something (a grant, a build's room) may have taken capacity freed since
   * the turn, which a lease refused without a try ahead of it could use: the type's capacity mark,
   * read after the try's statements, has moved. The mark was last seen unchanged before the try,
   * but what the try sent after (a slot lock looked at and taken, a resource's leases counted, a
   * resource built) sees every commit before each statement, so a release committing in between
   * would go to it. A mark read after those statements sees that release's mark (a release frees
   * and marks in one transaction).
   */
  const tookFreed = async (after: Lease) =>
    skipped.length > 0 && (isLive(after) || building(after)) && (await capacityMark(ctx, resourceType)) !== turn.mark;
  /**
   * serveInOrder's try of a lease none refused ahead of it after a try could use what it gets, while
   * leases refused without one wait ahead (skipped). A try that sends nothing took what its view,
   * read with the turn's mark, showed. One that sends statements is undone if it took what freed
   * since the turn (tookFreed), and then MOVED: the skipped leases go first (retryPassedOver); its
   * writes go after a savepoint for that, and the pass's batch goes back to what it planned before
   * (PassGrants.restore).
   */
  const tryWatchingMark = async (lease: Lease): Promise<Lease | typeof MOVED> => {
    const trial: TxContext = { ...trialOf(ctx), grants: batch };
    const [planned, sent] = [batch.checkpoint(), watched.statements];
    const { value: after, savepoint } = await watched.beforeWrites('watched', () => serveLease(trial, lease, pool));
    if (watched.statements !== sent && (await tookFreed(after))) {
      if (savepoint) await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT watched`;
      batch.restore(planned);
      pool.forget();
      return MOVED;
    }
    if (savepoint) await ctx.tx.$executeRaw`RELEASE SAVEPOINT watched`;
    keepTrial(ctx, trial);
    return after;
  };
  const markCheck: MarkCheck = {
    read: capacityMarkRead(resourceType),
    unchanged: (rows) => markOf(rows) === turn.mark,
  };
  /**
   * serveInOrder's try of a lease no lease ahead holds anything for, kept from the database but
   * for reads that find the capacity mark unchanged (see markMoved, WatchedTx): the lease as it is
   * after; MOVED when a read found the mark moved; REFUSED when it is not such a lease or its try
   * would have sent more than reads, which then wrote nothing.
   */
  const serveFromReads = async (lease: Lease): Promise<Lease | typeof REFUSED | typeof MOVED> => {
    if (heldAhead(lease) !== undefined || refusedAhead(lease) !== undefined || othersAhead(lease).length > 0)
      return REFUSED;
    const planned = batch.size;
    const after = await watched.tryFromReads(markCheck, () => serveLease(ctx, lease, pool));
    // Stopped before its grant was planned, a try changed nothing the pass keeps; a grant planned
    // after an error something caught would be planned twice by the try that follows.
    if ((after === REFUSED || after === MOVED) && batch.size !== planned)
      throw new Error(`lease ${lease.id}: a grant was planned by a try that was stopped`);
    return after;
  };
  const probeInOrder = async (
    lease: Lease,
    keptFor: number | undefined,
    sameShape: number | undefined,
    others: PassedOver[],
  ): Promise<Lease | { keptFor: number } | 'again' | typeof MOVED> => {
    // The probe reads the pool from the database and writes its own grant inside the savepoint.
    await batch.flush(ctx);
    const trial = trialOf(ctx);
    await ctx.tx.$executeRaw`SAVEPOINT probe`;
    const probe = await serveLease(trial, lease, pool);
    if (await tookFreed(probe)) {
      await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT probe`;
      pool.forget();
      return MOVED;
    }
    const taken = isLive(probe) ? await takenBy(ctx, probe) : null;
    const wanted = taken ? await wantedBy(others, [taken]) : {};
    const before = probed.get(lease.id);
    const offered = before?.served === served && before.got === taken?.key;
    const hold = keptFor ?? wanted.hold;
    if (taken === null || (hold === undefined && (offered || (sameShape ?? wanted.again) === undefined))) {
      await ctx.tx.$executeRaw`RELEASE SAVEPOINT probe`;
      keepTrial(ctx, trial);
      return probe;
    }
    await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT probe`;
    pool.forget();
    if (hold !== undefined) return holdFor(lease, hold);
    const rounds = (before?.rounds ?? 0) + 1;
    if (rounds > PROBE_ROUNDS) return holdFor(lease, (sameShape ?? wanted.again)!);
    probed.set(lease.id, { got: taken.key, served, rounds });
    return 'again';
  };
  /**
   * serveInOrder for a gang, asked with its parts granted: whether to keep them. A gang has no
   * attributes of its own: every lease passed over is one whose use of what its parts took is
   * asked. Undone, either the capacity waits for the next pass (`verdict.hold`) or the gang goes
   * back into the order behind the leases passed over since the last grant.
   */
  const gangInOrder = async (
    unit: Unit,
    parts: readonly Lease[],
    others: readonly PassedOver[],
    verdict: { hold: number | undefined },
  ) => {
    const taken: Taken[] = [];
    for (const part of parts) if (part.resourceType === resourceType) taken.push(await takenBy(ctx, part));
    const wanted = await wantedBy(others, taken);
    const got = taken.map((t) => t.key).join(' ');
    const before = probed.get(unit.id);
    if (wanted.hold !== undefined) {
      verdict.hold = wanted.hold;
      return false;
    }
    if (wanted.again === undefined || (before?.served === served && before.got === got)) return true;
    const rounds = (before?.rounds ?? 0) + 1;
    if (rounds > PROBE_ROUNDS) {
      verdict.hold = wanted.again;
      return false;
    }
    probed.set(unit.id, { got, served, rounds });
    return false;
  };
  /**
   * Whether the type's capacity mark has moved from the turn's as far as `lease`'s try could see:
   * its view's mark, when the view is read for it; otherwise the mark as it is now, read on its
   * own. A view kept from earlier in the pass does not show capacity freed since, but a try may
   * read more than its view (a blueprint reads its room to build, a slot lock is looked at): the
   * lease could build with room a skipped lease waits for. Only when the pass has sent nothing
   * since it last saw the turn's mark is the read put off ('unread'): a try that reads nothing
   * more sees nothing newer, and a read it sends carries a read of the mark (serveFromReads); one
   * that would write is stopped before it does, and reads the mark here first (markReadMoved).
   * Whatever a try sends after that read may see capacity freed since: tryWatchingMark reads the
   * mark again after it.
   */
  const markMoved = async (lease: Lease): Promise<boolean | 'unread'> => {
    const view = await pool.peek(ctx, lease);
    if (view.capacityMark !== turn.mark) return true;
    if (pool.lastReadNow) {
      markSeenAt = watched.statements;
      return false;
    }
    return markSeenAt === watched.statements ? 'unread' : markReadMoved();
  };
  const markReadMoved = async () => {
    if ((await capacityMark(ctx, resourceType)) !== turn.mark) return true;
    markSeenAt = watched.statements;
    return false;
  };
  /** Each demand's first lease still passed over, after some of them were served. */
  const firstFailures = () => {
    for (const key of [...failedDemand.keys()]) {
      const first = passedOver.find((p) => demandKey(p.lease) === key);
      if (first) failedDemand.set(key, first.unit.id);
      else failedDemand.delete(key);
    }
  };
  /**
   * Capacity may have freed since the leases passed over since the pass's last grant were refused:
   * a view shows a capacity mark other than the turn's epoch (the skipped leases were refused
   * without a try), or a probe found what they were refused (serveInOrder). What freed would go to
   * a lease behind them. Every one of them (the skipped ones, those queued behind them, which were
   * never tried, and those refused since) goes back into the order, to be tried in turn, with the
   * shares this pass's grants move; nothing more is skipped in this pass. (Found by the model check
   * with process kills: served alone, a skipped lease left the lease queued behind it untried, and
   * a newer lease of another demand took what it could use.) The caller has put its own unit back
   * first: those taken before it go ahead of it. If a lease behind a skipped one has been granted
   * already, serving it now would put the pass's grants out of order: the pass stops there
   * instead, and the next one, right after it, starts with them in a new epoch.
   */
  const retryPassedOver = () => {
    skipping = false;
    if (skipped.some((entry) => passedOver.includes(entry) && entry.grantsBefore !== served)) {
      stopped = true;
      return;
    }
    skipped = [];
    const again = passedOver.filter((entry) => entry.grantsBefore === served);
    for (const entry of again) {
      passedOver.splice(passedOver.indexOf(entry), 1);
      entry.unit.lease = entry.lease;
    }
    for (const entry of [...again].reverse()) queue.putBack(entry.unit);
    forgetRefusals(new Set(again.map((entry) => entry.unit)));
    firstFailures();
  };

  for (let unit = queue.next(); unit; unit = queue.next()) {
    const leases = unit.parts ?? [unit.lease];
    const leaseBand = queue.bandOf(unit);
    if (!mayServe(leaseBand, stopBand)) {
      block(leases, { reason: 'reserved', leaseId: stopLease });
      continue;
    }
    // A gang's quotas are looked at once it is had whole, with the turns of all its types.
    const atQuota = unit.parts ? null : overQuota(unit, 1);
    if (atQuota) {
      block(leases, atQuota);
      continue;
    }
    const grant = () => grantUnit(unit, leases.length);

    if (unit.parts) {
      const gangId = unit.lease.gangId!;
      const ended = unit.parts.filter(
        (p) => p.status === 'RELEASED' || p.status === 'BROKEN' || p.status === 'DESTROYED',
      );
      if (ended.length > 0 && unit.parts.every((p) => p.status !== 'ACQUIRED' && p.status !== 'ACTIVE')) {
        // A part ended while waiting (its wait timed out, it was released): the gang ends with it.
        const message = `part ${ended[0]!.id} of the gang ended (${ended[0]!.statusReason ?? ended[0]!.status})`;
        for (const part of unit.parts.filter((p) => p.status === 'PENDING'))
          await breakLease(ctx, part, 'gang-part-ended', message);
        for (const part of unit.parts) endedIds.add(part.id);
        continue;
      }
      const whole = unit.parts.length === gangs.sizes.get(gangId) && unit.parts.every((p) => p.status === 'PENDING');
      if (!whole || !unit.parts.every((p) => gangs.turns.has(p.resourceType))) {
        // A part busy with its own update, or another type's pass running: look again soon.
        block(leases, { reason: 'gang-busy', gangId });
        schedulePass(ctx, resourceType, new Date(ctx.now.getTime() + backoffDelayMs(1, ctx.deps.options)));
        continue;
      }
      const owner = unit.ownerId === null ? undefined : owners.get(unit.ownerId);
      const held = {
        resourceType,
        quota: owner?.quota ?? null,
        live: (owner?.live ?? 0) + (grants.get(owner?.id ?? -1) ?? 0),
      };
      const overQuotas = await gangQuotaBlocker(ctx, held, unit.ownerId, unit.parts);
      if (overQuotas) {
        block(leases, overQuotas);
        continue;
      }
      // The gang reads the pool from the database, whatever freed since the turn: leases skipped
      // ahead of it go first.
      if (skipped.length > 0) {
        queue.putBack(unit);
        retryPassedOver();
        if (stopped) break;
        continue;
      }
      // What this pass granted must be there first.
      await batch.flush(ctx);
      const verdict = { hold: undefined as number | undefined };
      const others = othersAhead(null);
      const outcome = await serveGang(
        ctx,
        unit.parts,
        others.length === 0 ? undefined : (got) => gangInOrder(unit, got, others, verdict),
      );
      pool.forget();
      if (outcome.kind === 'undone' && verdict.hold !== undefined) {
        block(leases, { reason: 'reserved', leaseId: verdict.hold });
        schedulePass(ctx, resourceType);
      } else if (outcome.kind === 'undone') {
        queue.putBack(unit);
        retryPassedOver();
        if (stopped) break;
      } else if (outcome.kind === 'granted') grant();
      else if (outcome.kind === 'failed') {
        const message = `part ${outcome.part.id} cannot be served: ${outcome.part.statusReason ?? 'broken'}`;
        for (const part of unit.parts) {
          await breakLease(ctx, part, 'gang-part-failed', message);
          endedIds.add(part.id);
        }
      } else {
        block(leases, { reason: 'gang-waiting', gangId, leaseId: outcome.part.id, part: outcome.part.blocker });
        failed(unit, leaseBand);
      }
      continue;
    }

    const key = demandKey(unit.lease);
    const ahead = failedDemand.get(key);
    if (ahead !== undefined) {
      const first = passedOver.find((p) => p.unit.id === ahead);
      passedOver.push({
        unit,
        lease: unit.lease,
        grantsBefore: served,
        capacity: first?.capacity ?? true,
        mark: first?.mark,
        blueprintIds: first?.blueprintIds ?? null,
        untried: first?.untried ?? false,
      });
      continue;
    }
    if (skipping && waitsUnchanged(unit.lease, turn.epoch, ctx.now)) {
      // Refused in this epoch for want of capacity, none of which has freed since as far as the
      // pass has seen: refused again, as a try would be, without the try. Its wait's safety net
      // stands, and so does the time its wait ends on its own, if it has one.
      schedulePass(ctx, resourceType, patientRetryAt(ctx, waitEndsAt(unit.lease)), { capacity: false });
      failedDemand.set(key, unit.id);
      // A patient wait is one for capacity (waiting.ts).
      const entry = {
        unit,
        lease: unit.lease,
        grantsBefore: served,
        capacity: true,
        mark: turn.mark,
        blueprintIds: null,
        untried: true,
      };
      passedOver.push(entry);
      skipped.push(entry);
      failed(unit, leaseBand);
      continue;
    }
    let after: Lease | { keptFor: number } | 'again' | typeof REFUSED | typeof MOVED = REFUSED;
    if (skipped.length > 0) {
      let moved = await markMoved(unit.lease);
      if (moved === 'unread') {
        const tried = await serveFromReads(unit.lease);
        if (tried === MOVED) moved = true;
        else if (tried === REFUSED) moved = await markReadMoved();
        else {
          // Its reads, if any, each found the mark unchanged after them.
          markSeenAt = watched.statements;
          [after, moved] = [tried, false];
        }
      }
      if (moved) {
        queue.putBack(unit);
        retryPassedOver();
        if (stopped) break;
        continue;
      }
    }
    if (after === REFUSED) after = await serveInOrder(unit.lease);
    if (after === 'again' || after === MOVED) {
      queue.putBack(unit);
      retryPassedOver();
      if (stopped) break;
      continue;
    }
    if ('keptFor' in after) block([unit.lease], { reason: 'reserved', leaseId: after.keptFor });
    else if (isLive(after)) {
      grant();
      if (unit.lease.blocker === null) firstDemand ??= unit.lease;
    }
    // A lease waiting for the resource it is building holds nothing back: the next one of its
    // demand may build or find its own.
    else if (after.status === 'PENDING' && !building(after)) {
      failedDemand.set(key, unit.id);
      const view = pool.lastView;
      passedOver.push({
        unit,
        lease: after,
        grantsBefore: served,
        capacity: waitsForCapacity(after),
        mark: view?.capacityMark,
        blueprintIds: view?.blueprints?.filter((b) => b.authorized).map((b) => b.blueprint.id) ?? null,
        untried: false,
      });
      failed(unit, leaseBand);
    } else if (after.status !== 'PENDING') endedIds.add(after.id);
  }
  if (stopped) schedulePass(ctx, resourceType, ctx.now, { capacity: false });
  await batch.finish(ctx);
  // Queued behind the first lease of their demand that is still refused.
  for (const { unit, lease } of passedOver) {
    const first = failedDemand.get(demandKey(lease));
    if (first !== undefined && first !== unit.id) block([lease], { reason: 'queued-behind', leaseId: first });
  }
  await writeBlockers(ctx, blocked);
  const left = new Set([...grantedIds, ...endedIds]);
  return {
    mayHaveMore: readsFurther(heads, left),
    leftWaiting: heads.some((lease) => !grantedIds.has(lease.id)),
    granted: served,
    firstDemand,
  };
}

/**
 * Whether the next read of the queue may reach leases this pass's did not: a shape was read to
 * its limit, or as many shapes as a pass reads, and some of what was read left the queue (granted
 * or ended). Nothing having left, the next read would be this one, and served the same: a lease
 * nothing can serve now, with more of its shape behind it, must not make every pass run twice.
 */
function readsFurther(heads: readonly Lease[], left: ReadonlySet<number>): boolean {
  const perShape = new Map<string, { read: number; left: number }>();
  for (const lease of heads) {
    // The shape as readHeads reads it: attributes and allowed blueprints.
    const shape = JSON.stringify([lease.attributes ?? {}, lease.allowedBlueprintIds]);
    const count = perShape.get(shape) ?? { read: 0, left: 0 };
    count.read++;
    if (left.has(lease.id)) count.left++;
    perShape.set(shape, count);
  }
  const counts = [...perShape.values()];
  if (perShape.size >= SHAPES_PER_PASS) return counts.some((c) => c.left > 0);
  return counts.some((c) => c.read >= HEADS_PER_DEMAND && c.left > 0);
}
