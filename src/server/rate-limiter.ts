/**
 * A token bucket per key (a principal, a client address), in this process's memory: each process
 * of a scaled-out service enforces the limit on what reaches it, which bounds what one token (or
 * one address) can cost any single process.
 */
export class RateLimiter<K = number> {
  private readonly buckets = new Map<K, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one request's worth; false when the key has used up its budget. */
  take(key: K): boolean {
    return this.tryTake(key) === 0;
  }

  /**
   * Takes one request's worth and answers 0, or, when the key has used up its budget, the whole
   * seconds (at least 1) until its bucket holds a request again: what Retry-After says.
   */
  tryTake(key: K): number {
    const bucket = this.bucket(key);
    const wait = this.secondsUntilOne(bucket);
    if (wait === 0) bucket.tokens -= 1;
    return wait;
  }

  /** 0 when the key has a request's worth now, else the whole seconds until it has; takes nothing. */
  waitSeconds(key: K): number {
    return this.secondsUntilOne(this.bucket(key));
  }

  /**
   * Takes one request's worth even from an empty bucket. For what is counted only once it is known
   * to count (a failed authentication): tries let in together, before any of them failed, all
   * count, and the debt is waited off before the next one is let in.
   */
  charge(key: K): void {
    this.bucket(key).tokens -= 1;
  }

  private bucket(key: K): { tokens: number; at: number } {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.refillPerMs);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 100_000) this.forgetFull(now);
    return bucket;
  }

  private get refillPerMs(): number {
    return this.perMinute / 60_000;
  }

  private secondsUntilOne(bucket: { tokens: number }): number {
    if (bucket.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.refillPerMs / 1_000));
  }

  /** Full buckets carry no information; dropping them keeps memory bounded. */
  private forgetFull(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.refillPerMs >= this.perMinute) this.buckets.delete(key);
    }
  }
}

/**
 * The key a client address counts under: an IPv4 address as it is, an IPv6 one by its /64. A
 * single IPv6 host is usually given a whole /64 and can send from any address in it, so limiting
 * each address alone would limit nothing.
 */
export function clientAddressKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const bare = address.replace(/%.*$/, '').toLowerCase();
  const [head = '', tail] = bare.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  // A dotted IPv4 tail (64:ff9b::1.2.3.4) fills two groups; only the first four groups matter here.
  const tailGroups = tail === undefined ? [] : groups(tail).flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const all = [
    ...groups(head),
    ...Array<string>(Math.max(0, 8 - groups(head).length - tailGroups.length)).fill('0'),
    ...tailGroups,
  ];
  return `${all
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
