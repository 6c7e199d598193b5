/**
 * How much work this process may run at once, learned from the latency of what it finishes (a
 * gradient in the manner of Netflix's concurrency-limits). A fixed bound is either too high to
 * protect latency on a slow or shared machine or too low for a fast one; past the point where the
 * process is saturated, more concurrency only queues, and queueing shows as latency rising over
 * the uncontended latency. The limit shrinks by that ratio and grows back while latency is fine.
 */
export interface AdaptiveLimitOptions {
  /** Never below: the limit must not starve ordinary bursts on a busy machine. */
  floor: number;
  /** Never above (MAX_IN_FLIGHT); also where the limit starts, so a new process refuses nothing. */
  ceiling: number;
  /** How many times the uncontended latency a window's mean may reach before the limit shrinks. */
  tolerance: number;
  /** Finished requests a window averages over: enough to ride out one slow request. */
  windowSize?: number;
}

/** A gradient this low or lower halves the limit in one window, no more: one bad window is not a collapse. */
const MIN_GRADIENT = 0.5;
/**
 * How far the baseline follows a slower window that did not use the limit: slowly, so that a
 * heavier workload is learned within some thousands of requests. Windows that used the limit do
 * not move it up at all, or sustained queueing would pass itself off as the uncontended latency.
 */
const BASELINE_DRIFT = 0.002;

export class AdaptiveLimit {
  private value: number;
  private readonly floor: number;
  private readonly ceiling: number;
  private readonly windowSize: number;
  /** The lowest window mean seen, drifting slowly upward while the limit is not in use: the uncontended latency. */
  private baseline = Number.POSITIVE_INFINITY;
  private windowSum = 0;
  private windowCount = 0;
  private windowPeak = 0;

  constructor(
    private readonly options: AdaptiveLimitOptions,
    private readonly changed: (limit: number) => void = () => {},
  ) {
    this.ceiling = Math.max(1, options.ceiling);
    this.floor = Math.min(Math.max(1, options.floor), this.ceiling);
    this.windowSize = options.windowSize ?? 16;
    this.value = this.ceiling;
  }

  get limit(): number {
    return Math.floor(this.value);
  }

  /** A request that started with `inFlight` running (itself included) finished after `ms`. */
  observe(ms: number, inFlight: number): void {
    this.windowSum += ms;
    this.windowCount += 1;
    this.windowPeak = Math.max(this.windowPeak, inFlight);
    if (this.windowCount < this.windowSize) return;
    const mean = this.windowSum / this.windowCount;
    const peak = this.windowPeak;
    this.windowSum = 0;
    this.windowCount = 0;
    this.windowPeak = 0;
    this.adjust(mean, peak);
  }

  private adjust(mean: number, peak: number): void {
    const baseline = this.baseline;
    // Only a window that used the limit, or ran as much as the floor allows, says anything about
    // it: latency that rose while little ran (a busy machine, a slow database) is not this process
    // queueing, and shrinking would only refuse work that would have run. The floor counts because
    // a process short of CPU queues requests unread in its sockets, and may never run half its
    // ceiling at once.
    const used = peak * 2 >= this.value || peak >= this.floor;
    if (mean < baseline) this.baseline = mean;
    else if (!used) this.baseline = baseline + (mean - baseline) * BASELINE_DRIFT;
    if (!Number.isFinite(baseline)) return;
    const gradient = Math.min(1, Math.max(MIN_GRADIENT, (this.options.tolerance * baseline) / Math.max(mean, 1e-3)));
    let next = this.value;
    if (gradient < 1) next = used ? this.value * gradient : this.value;
    // Back up quickly while latency is fine: a limit left low after a burst would refuse the next.
    else next = used ? this.value + Math.sqrt(this.value) : this.value * 1.5;
    next = Math.min(this.ceiling, Math.max(this.floor, next));
    const before = this.limit;
    this.value = next;
    if (this.limit !== before) this.changed(this.limit);
  }
}
