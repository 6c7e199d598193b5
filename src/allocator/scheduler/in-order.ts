import type { Lease } from '../../generated/prisma/client.js';
import type { TxContext } from '../context.js';
import { schedulePass } from '../jobs.js';
import { keepTrial, live, serveLease, trialOf } from './plan.js';
import { couldUse, takenBy, type Taken } from './could-use.js';
import type { PoolViews } from './pool.js';
import { capacityMark, capacityMarkRead, markOf } from './read.js';
import type { Unit } from './types.js';
import type { PassGrants } from './write.js';
import { MOVED, REFUSED, type MarkCheck, type WatchedTx } from './watched-tx.js';
import { shapeOf, type PassedOver, type PassedOverLeases } from './passed-over.js';

/** What of a running pass its tries use (serve.ts makes it). */
export interface PassInProgress {
  /** The pass's transaction, watched, with its batch of grants. */
  ctx: TxContext;
  resourceType: string;
  turn: { epoch: number; mark: string | null };
  batch: PassGrants;
  watched: WatchedTx;
  pool: PoolViews;
  passed: PassedOverLeases;
}

/** Tries of one lease against leases refused ahead of it in one pass (see serve). */
const PROBE_ROUNDS = 4;

/** Waiting for the resource it is building, a lease holds nothing back (see serve.ts). */
export const building = (lease: Lease) =>
  (lease.blocker as { reason?: string } | null)?.reason === 'waiting-for-resource-activation';

/** A try's outcome: the lease as it is after, capacity kept for a lease ahead, or back into the order. */
export type InOrder = Lease | { keptFor: number } | 'again' | typeof MOVED;

/**
 * A pass's tries of its leases, each kept only if it leaves the pass's grants in policy order:
 * capacity freed while the pass runs goes to the first lease tried after it frees, and greedy
 * order says that a lease ahead which could use it gets it first.
 */
export class InOrderTries {
  /** Shapes whose freed capacity waits for the next pass (see serve). */
  private readonly heldShapes = new Set<string>();
  /** What a unit's probe found when it sent the leases refused ahead of it back (see serve). */
  private readonly probed = new Map<number, { got: string; served: number; rounds: number }>();
  /**
   * The pass's statement count when it last saw the type's capacity mark still the turn's, or
   * null: nothing the pass had read by then shows capacity freed since the turn.
   */
  private markSeenAt: number | null;
  private readonly markCheck: MarkCheck;

  /** `seenAtStart`: the view read ahead with the turn, in its round trip, showed the turn's mark. */
  constructor(
    private readonly pass: PassInProgress,
    seenAtStart: boolean,
  ) {
    this.markSeenAt = seenAtStart ? 0 : null;
    this.markCheck = {
      read: capacityMarkRead(pass.resourceType),
      unchanged: (rows) => markOf(rows) === pass.turn.mark,
    };
  }

  /**
   * Serves `lease`; but if leases ahead of it that could use what it gets were refused, they go
   * first. Each lease's view of the pool is read when it is tried, so capacity committed while
   * the pass runs (a raised resource limit, a freed slot) would otherwise go to the first lease
   * tried after it, while the ones refused a moment before waited behind their own stale failure.
   * So the lease is tried in a savepoint: refused, that stands; served, it is rolled back if a
   * lease ahead could use what it got (one of its attributes and another demand: always), and it
   * and the leases passed over since the last grant go back into the order ('again'), to be taken
   * in turn with the shares their grants move (PassedOverLeases.takeBack).
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
  async serve(lease: Lease): Promise<InOrder> {
    const { passed } = this.pass;
    const keptFor = passed.heldAhead(lease);
    if (keptFor !== undefined && this.heldShapes.has(shapeOf(lease))) return { keptFor };
    const sameShape = passed.refusedAhead(lease) ?? keptFor;
    const others = passed.othersAhead(lease);
    if (sameShape === undefined && others.length === 0)
      return passed.skipped.length > 0 ? this.tryWatchingMark(lease) : serveLease(this.pass.ctx, lease, this.pass.pool);
    return this.probe(lease, keptFor, sameShape, others);
  }

  /**
   * Before a lease is tried while leases refused without a try wait ahead of it: MOVED when the
   * type's capacity mark has moved from the turn's as far as its try could see (they go first);
   * the lease as it is after, when its try was kept from the database but for reads that found the
   * mark unchanged; otherwise REFUSED, and the lease is to be tried as usual (serve).
   */
  async withSkippedAhead(lease: Lease): Promise<Lease | typeof REFUSED | typeof MOVED> {
    let moved = await this.markMoved(lease);
    if (moved === 'unread') {
      const tried = await this.serveFromReads(lease);
      if (tried === MOVED) moved = true;
      else if (tried === REFUSED) moved = await this.markReadMoved();
      else {
        // Its reads, if any, each found the mark unchanged after them.
        this.markSeenAt = this.pass.watched.statements;
        return tried;
      }
    }
    return moved ? MOVED : REFUSED;
  }

  /**
   * serve for a gang, asked with its parts granted: whether to keep them. A gang has no
   * attributes of its own: every lease passed over is one whose use of what its parts took is
   * asked. Undone, either the capacity waits for the next pass (`verdict.hold`) or the gang goes
   * back into the order behind the leases passed over since the last grant.
   */
  async keepGang(
    unit: Unit,
    parts: readonly Lease[],
    others: readonly PassedOver[],
    verdict: { hold: number | undefined },
  ) {
    const { ctx, resourceType, passed } = this.pass;
    const taken: Taken[] = [];
    for (const part of parts) if (part.resourceType === resourceType) taken.push(await takenBy(ctx, part));
    const wanted = await this.wantedBy(others, taken);
    const got = taken.map((t) => t.key).join(' ');
    const before = this.probed.get(unit.id);
    if (wanted.hold !== undefined) {
      verdict.hold = wanted.hold;
      return false;
    }
    if (wanted.again === undefined || (before?.served === passed.served && before.got === got)) return true;
    const rounds = (before?.rounds ?? 0) + 1;
    if (rounds > PROBE_ROUNDS) {
      verdict.hold = wanted.again;
      return false;
    }
    this.probed.set(unit.id, { got, served: passed.served, rounds });
    return false;
  }

  /**
   * Which of `others` could use what a try took (could-use.ts). One passed over since the pass's
   * last grant goes first (`again`, see PassedOverLeases.takeBack). One passed over before that
   * grant could be served now only out of order: the capacity waits for the next pass (`hold`), but
   * only if the type's capacity mark has moved since its refusal saw it. Otherwise nothing
   * announced freed capacity since: what was taken was there when it was refused, or opened by a
   * blueprint on its own, which a later pass also finds; holding it anyway would hold it again in
   * every pass for as long as that lease waits.
   */
  private async wantedBy(others: readonly PassedOver[], taken: readonly Taken[]) {
    const { ctx, resourceType, passed } = this.pass;
    let mark: { now: string | null } | undefined;
    const wanted: { again?: number; hold?: number } = {};
    for (const p of others) {
      const again = p.grantsBefore === passed.served;
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
  }

  /**
   * Capacity freed after a lease ahead was refused it, and a grant has come between: serving
   * that lease now would put it out of order, serving this one would give it what the lease
   * ahead could use. Neither; the next pass, right after this one, starts with it.
   */
  private holdFor(lease: Lease, keptFor: number) {
    this.heldShapes.add(shapeOf(lease));
    schedulePass(this.pass.ctx, this.pass.resourceType);
    return { keptFor };
  }

  /**
   * Whether a try that took something (a grant, a build's room) may have taken capacity freed since
   * the turn, which a lease refused without a try ahead of it could use: the type's capacity mark,
   * read after the try's statements, has moved. The mark was last seen unchanged before the try,
   * but what the try sent after (a slot lock looked at and taken, a resource's leases counted, a
   * resource built) sees every commit before each statement, so a release committing in between
   * would go to it. A mark read after those statements sees that release's mark (a release frees
   * and marks in one transaction).
   */
  private async tookFreed(after: Lease): Promise<boolean> {
    const { ctx, resourceType, turn, passed } = this.pass;
    return (
      passed.skipped.length > 0 &&
      (live(after) || building(after)) &&
      (await capacityMark(ctx, resourceType)) !== turn.mark
    );
  }

  /**
   * serve's try of a lease none refused ahead of it after a try could use what it gets, while
   * leases refused without one wait ahead (skipped). A try that sends nothing took what its view,
   * read with the turn's mark, showed. One that sends statements is undone if it took what freed
   * since the turn (tookFreed), and then MOVED: the skipped leases go first (takeBack); its
   * writes go after a savepoint for that, and the pass's batch goes back to what it planned before
   * (PassGrants.restore).
   */
  private async tryWatchingMark(lease: Lease): Promise<Lease | typeof MOVED> {
    const { ctx, batch, watched, pool } = this.pass;
    const trial: TxContext = { ...trialOf(ctx), grants: batch };
    const [planned, sent] = [batch.checkpoint(), watched.statements];
    const { value: after, savepoint } = await watched.beforeWrites('watched', () => serveLease(trial, lease, pool));
    if (watched.statements !== sent && (await this.tookFreed(after))) {
      if (savepoint) await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT watched`;
      batch.restore(planned);
      pool.forget();
      return MOVED;
    }
    if (savepoint) await ctx.tx.$executeRaw`RELEASE SAVEPOINT watched`;
    keepTrial(ctx, trial);
    return after;
  }

  /**
   * A try of a lease no lease ahead holds anything for, kept from the database but for reads that
   * find the capacity mark unchanged (see markMoved, WatchedTx): the lease as it is after; MOVED
   * when a read found the mark moved; REFUSED when it is not such a lease or its try would have
   * sent more than reads, which then wrote nothing.
   */
  private async serveFromReads(lease: Lease): Promise<Lease | typeof REFUSED | typeof MOVED> {
    const { ctx, batch, watched, pool, passed } = this.pass;
    if (
      passed.heldAhead(lease) !== undefined ||
      passed.refusedAhead(lease) !== undefined ||
      passed.othersAhead(lease).length > 0
    )
      return REFUSED;
    const planned = batch.size;
    const after = await watched.tryFromReads(this.markCheck, () => serveLease(ctx, lease, pool));
    // Stopped before its grant was planned, a try changed nothing the pass keeps; a grant planned
    // after an error something caught would be planned twice by the try that follows.
    if ((after === REFUSED || after === MOVED) && batch.size !== planned)
      throw new Error(`lease ${lease.id}: a grant was planned by a try that was stopped`);
    return after;
  }

  private async probe(
    lease: Lease,
    keptFor: number | undefined,
    sameShape: number | undefined,
    others: PassedOver[],
  ): Promise<InOrder> {
    const { ctx, batch, pool, passed } = this.pass;
    // The probe reads the pool from the database and writes its own grant inside the savepoint.
    await batch.flush(ctx);
    const trial = trialOf(ctx);
    await ctx.tx.$executeRaw`SAVEPOINT probe`;
    const probe = await serveLease(trial, lease, pool);
    if (await this.tookFreed(probe)) {
      await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT probe`;
      pool.forget();
      return MOVED;
    }
    const taken = live(probe) ? await takenBy(ctx, probe) : null;
    const wanted = taken ? await this.wantedBy(others, [taken]) : {};
    const before = this.probed.get(lease.id);
    const offered = before?.served === passed.served && before.got === taken?.key;
    const hold = keptFor ?? wanted.hold;
    if (taken === null || (hold === undefined && (offered || (sameShape ?? wanted.again) === undefined))) {
      await ctx.tx.$executeRaw`RELEASE SAVEPOINT probe`;
      keepTrial(ctx, trial);
      return probe;
    }
    await ctx.tx.$executeRaw`ROLLBACK TO SAVEPOINT probe`;
    pool.forget();
    if (hold !== undefined) return this.holdFor(lease, hold);
    const rounds = (before?.rounds ?? 0) + 1;
    if (rounds > PROBE_ROUNDS) return this.holdFor(lease, (sameShape ?? wanted.again)!);
    this.probed.set(lease.id, { got: taken.key, served: passed.served, rounds });
    return 'again';
  }

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
  private async markMoved(lease: Lease): Promise<boolean | 'unread'> {
    const { ctx, turn, watched, pool } = this.pass;
    const view = await pool.peek(ctx, lease);
    if (view.capacityMark !== turn.mark) return true;
    if (pool.lastReadNow) {
      this.markSeenAt = watched.statements;
      return false;
    }
    return this.markSeenAt === watched.statements ? 'unread' : this.markReadMoved();
  }

  private async markReadMoved(): Promise<boolean> {
    const { ctx, resourceType, turn, watched } = this.pass;
    if ((await capacityMark(ctx, resourceType)) !== turn.mark) return true;
    this.markSeenAt = watched.statements;
    return false;
  }
}
