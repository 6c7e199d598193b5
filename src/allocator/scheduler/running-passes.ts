import type { AfterCommit, AllocatorDeps } from '../context.js';

/**
 * At the latest this long after a request committed, its events go out even if no pass of its
 * type has run here since (its pass ran again in another process, or not at all): a safety net.
 * A pass that ran without taking them (it rolled back, or found nothing) publishes them as it ends.
 */
const CARRIED_AT_MOST_MS = 250;

interface Carried {
  after: AfterCommit;
  /** When the request committed (performance.now()). */
  at: number;
  timer: NodeJS.Timeout;
}

/**
 * The scheduling passes running in this process, and the events of requests that came while one
 * ran. Such a request marks the pass to run again, and the next pass of its type serves it: its
 * lease's first event (PENDING) goes out with that pass's commit instead of on its own, so that a
 * subscriber hears once of a lease requested and granted a few milliseconds apart and reads its
 * rows once, and the notification is shared. Under load, nearly every request comes while a pass
 * runs. Per process, never shared: a pass running elsewhere does not take them.
 */
export class RunningPasses {
  private readonly running = new Map<number, number>();
  private readonly carried = new Map<number, Carried[]>();

  /** A pass of the queue starts; returns its start, which decides what its commit takes. */
  started(queueId: number): number {
    this.running.set(queueId, (this.running.get(queueId) ?? 0) + 1);
    return performance.now();
  }

  /** The pass that started at `startedAt` ended: what it should have taken and did not goes out now. */
  ended(queueId: number, startedAt: number, deps: AllocatorDeps): void {
    const n = (this.running.get(queueId) ?? 1) - 1;
    if (n > 0) this.running.set(queueId, n);
    else this.running.delete(queueId);
    for (const entry of this.take(queueId, startedAt)) entry.after.flush(deps);
  }

  /**
   * Keeps a committed request's events for the next pass of its queue, if a pass of it runs here
   * now (and will therefore run again for it); false: publish them yourself.
   */
  carry(queueId: number, after: AfterCommit, deps: AllocatorDeps): boolean {
    if (!this.running.has(queueId)) return false;
    const list = this.carried.get(queueId) ?? [];
    const entry: Carried = {
      after,
      at: performance.now(),
      timer: setTimeout(() => {
        this.remove(queueId, entry);
        after.flush(deps);
      }, CARRIED_AT_MOST_MS),
    };
    list.push(entry);
    this.carried.set(queueId, list);
    return true;
  }

  /**
   * Called as a pass that started at `startedAt` commits: the events of requests committed before
   * it started (so their leases were among what it read) go out with its own, earliest first.
   */
  publishWith(queueId: number, startedAt: number, after: AfterCommit): void {
    // absorb puts what it takes in front: the latest first, so that the earliest ends up first.
    for (const entry of this.take(queueId, startedAt).reverse()) after.absorb(entry.after);
  }

  /** The events of requests committed before `startedAt`, earliest first, no longer kept. */
  private take(queueId: number, startedAt: number): Carried[] {
    const list = this.carried.get(queueId) ?? [];
    const taken = list.filter((entry) => entry.at < startedAt);
    for (const entry of taken) clearTimeout(entry.timer);
    this.keep(queueId, taken.length > 0 ? list.filter((entry) => entry.at >= startedAt) : list);
    return taken;
  }

  private remove(queueId: number, entry: Carried): void {
    this.keep(
      queueId,
      (this.carried.get(queueId) ?? []).filter((other) => other !== entry),
    );
  }

  private keep(queueId: number, list: Carried[]): void {
    if (list.length > 0) this.carried.set(queueId, list);
    else this.carried.delete(queueId);
  }
}
