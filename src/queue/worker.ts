import { randomUUID } from 'node:crypto';
import type { Database } from '../db/database.js';
import type { JobKind } from '../generated/prisma/client.js';
import { claimJobs, completeJob, extendClaim, failJob, nextDueAt, type ClaimedJob } from './store.js';

export type JobHandler = (job: ClaimedJob) => Promise<void>;

export interface WorkerOptions {
  workerId: string;
  /** Jobs run at once by this process (1 on PGlite, which has a single connection). */
  concurrency: number;
  /** A claim not renewed for this long is presumed dead and the job is run again elsewhere. */
  claimTtlMs: number;
  /**
   * Safety sweep. Wake-ups are pushed (notify) within a process; until cross-process wake-ups
   * exist, this slow sweep is how a process sees jobs scheduled by another one, and how expired
   * claims of dead processes are picked up. It is not what makes delayed jobs run on time: the
   * timer set to the next due job does that.
   */
  sweepIntervalMs: number;
  /** Delay before re-running a job whose handler threw (attempt is 1-based). */
  retryDelayMs: (attempt: number) => number;
  /** Instrumentation around each job (tests use it to prove that updates never overlap). */
  wrap?: (job: ClaimedJob, run: () => Promise<void>) => Promise<void>;
  onError?: (job: ClaimedJob | null, error: unknown) => void;
}

export const defaultWorkerOptions: Omit<WorkerOptions, 'workerId'> = {
  concurrency: 4,
  claimTtlMs: 60_000,
  sweepIntervalMs: 10_000,
  retryDelayMs: (attempt) => Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 10)),
};

// The longest delay setTimeout honours; later jobs are re-checked at least this often anyway.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs the durable queue in this process: claims due jobs up to `concurrency`, runs their handler,
 * and sleeps until the next due job (a timer) or until notify() says something new is due.
 */
export class QueueWorker {
  private readonly running = new Set<Promise<void>>();
  private pumping = false;
  private pumpAgain = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private sweep: NodeJS.Timeout | undefined;
  private claims = 0;

  constructor(
    private readonly db: Database,
    private readonly handlers: Record<JobKind, JobHandler>,
    private readonly options: WorkerOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.sweep = setInterval(() => void this.pump(), this.options.sweepIntervalMs);
    void this.pump();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweep) clearInterval(this.sweep);
    this.clearTimer();
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Something is due at `runAt` (default now): the hook cross-process wake-ups will call too. */
  notify(runAt: Date = new Date()): void {
    if (this.stopped) return;
    const delay = runAt.getTime() - Date.now();
    if (delay <= 0) void this.pump();
    else this.armTimer(runAt.getTime());
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
        void this.pump();
      },
      Math.min(Math.max(at - Date.now(), 0), MAX_TIMER_MS),
    );
  }

  private async pump(): Promise<void> {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const free = this.options.concurrency - this.running.size;
        if (free <= 0) break;
        const token = `${this.options.workerId}:${++this.claims}:${randomUUID().slice(0, 8)}`;
        const jobs = await claimJobs(this.db, token, free, this.options.claimTtlMs, new Date());
        for (const job of jobs) this.run(job);
        if (jobs.length === free) this.pumpAgain = true;
      } while (this.pumpAgain && !this.stopped);
      if (!this.stopped && this.running.size < this.options.concurrency) {
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

  private run(job: ClaimedJob): void {
    const handler = this.handlers[job.kind];
    const task = (async () => {
      const heartbeat = setInterval(
        () => void extendClaim(this.db, job, this.options.claimTtlMs, new Date()).catch(() => {}),
        Math.max(this.options.claimTtlMs / 3, 50),
      );
      try {
        const execute = () => handler(job);
        await (this.options.wrap ? this.options.wrap(job, execute) : execute());
        clearInterval(heartbeat);
        await completeJob(this.db, job);
      } catch (error) {
        clearInterval(heartbeat);
        this.options.onError?.(job, error);
        const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        const retryAt = new Date(Date.now() + this.options.retryDelayMs(job.attempts));
        await failJob(this.db, job, message, retryAt).catch((failure: unknown) => this.options.onError?.(job, failure));
      }
    })().finally(() => {
      this.running.delete(task);
      void this.pump();
    });
    this.running.add(task);
  }
}
