import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.js';
import type { JobKind } from '../generated/prisma/client.js';
import { closeBookkeeping, openBookkeeping } from './bookkeeping.js';
import { expireClaimsOfDeadProcesses, expireClaimsOfEarlierHolders, ProcessLiveness } from './liveness.js';
import { takeCarried, type Carried, type JobClaim, type Reservation } from './port.js';
import { claimJobs, completeJob, extendClaim, failJob, nextDueAt, type ClaimedJob } from './store.js';

/** Runs one claimed job; its transactions are given `claim` (see ../allocator/jobs.ts). */
export type JobHandler = (job: ClaimedJob, claim: JobClaim) => Promise<void>;

export interface WorkerOptions {
  workerId: string;
  /** Jobs run at once by this process (1 on PGlite, which has a single connection). */
  concurrency: number;
  /** A claim not renewed for this long is presumed dead and the job is run again elsewhere. */
  claimTtlMs: number;
  /**
   * Safety sweep. Wake-ups are pushed (notify) within a process and between processes; this slow
   * sweep is how expired claims of dead processes are picked up, and a backstop for a lost
   * wake-up. It is not what makes delayed jobs run on time: the timer set to the next due job
   * does that.
   */
  sweepIntervalMs: number;
  /**
   * How often this process looks for claims of processes that died (their lock is free; see
   * liveness.ts), which are then run again at once rather than when their claim expires. PostgreSQL
   * only: on PGlite no other process can claim anything while this one runs, so it looks once, at
   * start.
   */
  deadClaimIntervalMs: number;
  /** Delay before re-running a job whose handler threw (attempt is 1-based). */
  retryDelayMs: (attempt: number) => number;
  /**
   * Instrumentation around each run of a job (tests use it to prove that updates never overlap;
   * the claim says when the run's own commit ended it).
   */
  wrap?: (claim: JobClaim, run: () => Promise<void>) => Promise<void>;
  onError?: (job: ClaimedJob | null, error: unknown) => void;
}

export const defaultWorkerOptions: Omit<WorkerOptions, 'workerId'> = {
  concurrency: 4,
  claimTtlMs: 60_000,
  sweepIntervalMs: 10_000,
  deadClaimIntervalMs: 1_000,
  retryDelayMs: (attempt) => Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 10)),
};

// The longest delay setTimeout honours; later jobs are re-checked at least this often anyway.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** At the latest this long after its job started, carried work is published regardless. */
const CARRY_MS = 20;

/**
 * How many times in a row one claim runs a job asked for again while it ran (JobClaim.again)
 * before the slot gives it back to the queue's order: jobs due for longer then get their turn.
 */
const MAX_RUNS_PER_CLAIM = 16;

/**
 * Runs the durable queue in this process: claims due jobs up to `concurrency`, runs their handler,
 * and sleeps until the next due job (a timer) or until notify() says something new is due.
 */
export class QueueWorker {
  private readonly running = new Set<Promise<void>>();
  /**
   * This process's latest run of each job key still in progress. A run whose own commit removed the
   * job's row has ended its claim, so the same key can be claimed again (here too) while that run
   * still carries out what its commit set off (events): a new run of the key here waits for it, so
   * that one process never runs one key twice at once and sets off its runs' work in their order.
   */
  private readonly latestOf = new Map<string, Promise<void>>();
  private reserved = 0;
  private pumping = false;
  private pumpAgain = false;
  /** The pump in progress, which stop() lets finish before closing the queue's connections. */
  private pumped: Promise<void> = Promise.resolve();
  /** Due jobs may be waiting for a slot: look again as soon as one frees. */
  private backlog = true;
  /** Counts the signals that something is due, so a claim in flight does not swallow one. */
  private signals = 0;
  /** The timer may be unarmed for a job that is due later: ask the database when it is. */
  private lookAhead = true;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private sweep: NodeJS.Timeout | undefined;
  private deadClaims: NodeJS.Timeout | undefined;
  private claims = 0;
  private liveness: ProcessLiveness;
  /** Until the process lock is held, this worker claims nothing: its claims would look dead. */
  private live = false;

  constructor(
    private readonly db: Database,
    private readonly handlers: Record<JobKind, JobHandler>,
    private readonly options: WorkerOptions,
  ) {
    this.liveness = new ProcessLiveness(db, (error) => options.onError?.(null, error));
  }

  /** A failure of work done for this worker outside any job (booking work at start-up). */
  reportError(error: unknown): void {
    this.options.onError?.(null, error);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    openBookkeeping(this.db, (error) => this.options.onError?.(null, error));
    this.signal(true);
    this.sweep = setInterval(() => {
      this.signal(true);
      void this.pump();
    }, this.options.sweepIntervalMs);
    this.liveness = new ProcessLiveness(this.db, (error) => this.options.onError?.(null, error));
    if (this.liveness.enabled) {
      this.deadClaims = setInterval(() => void this.takeOverDeadClaims(), this.options.deadClaimIntervalMs);
    }
    this.pumped = this.liveness
      .acquire()
      // Before this worker claims anything, so that the first claim already finds them.
      .then(() => expireClaimsOfEarlierHolders(this.db, new Date()))
      .then(
        () => this.goLive(),
        (error: unknown) => {
          // Without its lock (or that look) the process still works; dead claims then only expire.
          this.options.onError?.(null, error);
          this.goLive();
        },
      );
  }

  private goLive(): void {
    if (this.stopped) return;
    this.live = true;
    void this.pump();
  }

  private async takeOverDeadClaims(): Promise<void> {
    try {
      if (this.stopped || !this.live) return;
      if ((await expireClaimsOfDeadProcesses(this.db, new Date())) > 0) {
        this.signal(false);
        void this.pump();
      }
    } catch (error) {
      this.options.onError?.(null, error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.live = false;
    if (this.sweep) clearInterval(this.sweep);
    if (this.deadClaims) clearInterval(this.deadClaims);
    this.clearTimer();
    // A claim in flight, or a reservation, may still turn into jobs of this worker: they run
    // before stop returns, and before the queue's connections close.
    await this.pumped;
    while (this.running.size > 0 || this.reserved > 0) {
      if (this.running.size > 0) await Promise.allSettled([...this.running]);
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await closeBookkeeping(this.db);
    // Last: a job this process still held would otherwise be taken over while it finishes.
    await this.liveness.release();
  }

  /** Something is due at `runAt` (default now): the hook cross-process wake-ups call too. */
  notify(runAt: Date = new Date()): void {
    if (this.stopped) return;
    const delay = runAt.getTime() - Date.now();
    if (delay <= 0) {
      this.signal(false);
      void this.pump();
    } else this.armTimer(runAt.getTime());
  }

  /** Jobs may be due now; `lookAhead`: the next due time may be unknown to the timer too. */
  private signal(lookAhead: boolean): void {
    this.backlog = true;
    this.signals++;
    if (lookAhead) this.lookAhead = true;
  }

  /** A slot for a job the caller inserts already claimed by this worker; null when none is free. */
  reserve(): Reservation | null {
    if (this.stopped || !this.live || this.running.size + this.reserved >= this.options.concurrency) return null;
    this.reserved++;
    let open = true;
    const close = () => {
      if (!open) throw new Error('this reservation was already used');
      open = false;
      this.reserved--;
    };
    const token = this.newToken();
    return {
      token,
      lockedUntil: new Date(Date.now() + this.options.claimTtlMs),
      start: (job, carried) => {
        close();
        this.run({ ...job, token }, carried ?? null);
      },
      cancel: () => {
        close();
        if (this.backlog || this.lookAhead) void this.pump();
      },
    };
  }

  private newToken(): string {
    return `${this.options.workerId}:${++this.claims}:${randomUUID().slice(0, 8)}${this.liveness.suffix}`;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private armTimer(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        // This was the earliest job known; the one after it is found by asking the database.
        this.signal(true);
        void this.pump();
      },
      Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS),
    );
  }

  private free(): number {
    return this.options.concurrency - this.running.size - this.reserved;
  }

  private pump(): Promise<void> {
    if (this.stopped || !this.live) return this.pumped;
    if (this.pumping) {
      this.pumpAgain = true;
      return this.pumped;
    }
    this.pumping = true;
    this.pumped = this.pumpOnce();
    return this.pumped;
  }

  private async pumpOnce(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        if (!this.backlog) break;
        const free = this.free();
        if (free <= 0) break;
        const signals = this.signals;
        const jobs = await claimJobs(this.db, this.newToken(), free, this.options.claimTtlMs, new Date());
        // Fewer than asked for: nothing else is due now, until a wake-up or the timer says so.
        if (jobs.length < free && this.signals === signals) this.backlog = false;
        for (const job of jobs) this.run(job);
      } while ((this.pumpAgain || this.backlog) && !this.stopped);
      if (!this.stopped && this.lookAhead && this.free() > 0) {
        this.lookAhead = false;
        const next = await nextDueAt(this.db);
        if (next) this.armTimer(next.getTime());
      }
    } catch (error) {
      this.options.onError?.(null, error);
      this.armTimer(Date.now() + 1_000);
    } finally {
      this.pumping = false;
    }
    if (this.pumpAgain && !this.stopped) void this.pump();
  }

  private run(job: ClaimedJob, carried: Carried | null = null): void {
    const handler = this.handlers[job.kind];
    const claim: JobClaim = { job, rescheduleAt: null, carried };
    const carryTimer = carried ? setTimeout(() => takeCarried(claim)?.flush(), CARRY_MS) : undefined;
    const previous = this.latestOf.get(job.key);
    const task = (async () => {
      if (previous) await previous;
      const heartbeat = setInterval(
        () => void extendClaim(this.db, job, this.options.claimTtlMs, new Date()).catch(() => {}),
        Math.max(this.options.claimTtlMs / 3, 50),
      );
      try {
        let current = claim;
        for (let runs = 1; ; runs++) {
          const running = current;
          const execute = () => handler(job, running);
          await (this.options.wrap ? this.options.wrap(running, execute) : execute());
          if (!current.again || this.stopped || runs >= MAX_RUNS_PER_CLAIM) break;
          current = { job, rescheduleAt: null, carried: null, continues: true };
        }
        clearInterval(heartbeat);
        // A job kept claimed to run again that is not run here now is due at once, for anyone. One
        // its handler completed itself is due when that left it (rescheduleAt), if at all.
        const dueAgainAt =
          current.completedAt !== undefined
            ? current.rescheduleAt
            : await completeJob(this.db, job, current.again ? new Date() : current.rescheduleAt);
        if (dueAgainAt) this.notify(dueAgainAt);
      } catch (error) {
        clearInterval(heartbeat);
        this.options.onError?.(job, error);
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        const retryAt = new Date(Date.now() + this.options.retryDelayMs(job.attempts));
        const dueAt = await failJob(this.db, job, message, retryAt).catch((failure: unknown) => {
          this.options.onError?.(job, failure);
          return null;
        });
        if (dueAt) this.notify(dueAt);
      }
    })().finally(() => {
      if (this.latestOf.get(job.key) === task) this.latestOf.delete(job.key);
      clearTimeout(carryTimer);
      takeCarried(claim)?.flush();
      this.running.delete(task);
      if (this.backlog || this.lookAhead) void this.pump();
    });
    this.latestOf.set(job.key, task);
    this.running.add(task);
  }
}
