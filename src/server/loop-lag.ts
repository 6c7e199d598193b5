/**
 * Refuses new work while the event loop lags. Latency only says the process is saturated once
 * requests finish; a lagging loop says so at once, and a request admitted then would wait behind
 * everything already queued in the loop. One long turn (a large response, a collection) is not
 * overload, so the gate closes only after several lagging checks in a row and opens at the first
 * check that is on time. The process bound consults it only while enough work is in flight.
 */
export class LagGate {
  private lagging = 0;
  private lastLagMs = 0;

  constructor(
    private readonly limitMs: number,
    private readonly turns: number,
  ) {}

  /** A check ran `lagMs` later than it was due. */
  observe(lagMs: number): void {
    this.lastLagMs = lagMs;
    this.lagging = lagMs > this.limitMs ? this.lagging + 1 : 0;
  }

  get open(): boolean {
    return this.lagging < this.turns;
  }

  get lagMs(): number {
    return this.lastLagMs;
  }
}

/**
 * Checks the loop every `intervalMs` by how late a timer fires, and tells `observe`. The timer does
 * not keep the process alive; `stop` ends it.
 */
export function watchLoopLag(intervalMs: number, observe: (lagMs: number) => void): () => void {
  let due = performance.now() + intervalMs;
  let timer: NodeJS.Timeout;
  const check = () => {
    const now = performance.now();
    observe(Math.max(0, now - due));
    due = now + intervalMs;
    timer = setTimeout(check, intervalMs).unref();
  };
  timer = setTimeout(check, intervalMs).unref();
  return () => clearTimeout(timer);
}
