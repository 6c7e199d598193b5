/**
 * A token bucket per principal, in this process's memory: each process of a scaled-out service
 * enforces the limit on what reaches it, which bounds what one token can cost any single process.
 */
export class RateLimiter {
  private readonly buckets = new Map<number, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one request's worth; false when the principal has used up its budget. */
  take(principalId: number): boolean {
    return this.tryTake(principalId) === 0;
  }

  /**
   * Takes one request's worth and answers 0, or, when the principal has used up its budget, the
   * whole seconds (at least 1) until its bucket holds a request again: what Retry-After says.
   */
  tryTake(principalId: number): number {
    const now = this.now();
    const refillPerMs = this.perMinute / 60_000;
    const bucket = this.buckets.get(principalId) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * refillPerMs);
    bucket.at = now;
    this.buckets.set(principalId, bucket);
    if (this.buckets.size > 100_000) this.forgetFull(now);
    if (bucket.tokens < 1) return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1_000));
    bucket.tokens -= 1;
    return 0;
  }

  /** Full buckets carry no information; dropping them keeps memory bounded. */
  private forgetFull(now: number): void {
    for (const [id, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * (this.perMinute / 60_000) >= this.perMinute) this.buckets.delete(id);
    }
  }
}
