/** Timings and policies of the allocator; tests shrink them so that they run in seconds. */
export interface AllocatorOptions {
  /** Where "now" comes from for expiry, grace periods and backoff. */
  clock: () => Date;
  /** First retry delay of a waiting lease; doubles per consecutive failure up to `backoffCapMs`. */
  backoffBaseMs: number;
  backoffCapMs: number;
  /**
   * Safety net of a wait that a wake-up is certain to end (capacity busy, queued behind an older
   * lease): retried only this often, so that a long queue does not keep the workers busy.
   */
  idleRetryMs: number;
  /** In [0, 1): source of the jitter that keeps racing leases from retrying in lock step. */
  random: () => number;
  /**
   * A waiting lease's band (its priority for the scheduling pass) rises by one per this much
   * waiting, so that no lease waits forever behind newer ones of a higher priority; a lease or gang
   * that waited this long and could not be served keeps capacity from leases of lower bands.
   */
  agingIntervalMs: number;
  /**
   * While a type is busy (its last pass in this process ended less than ten of these ago), a pass
   * a request asks for starts this much after the request, so that one pass serves the requests of
   * that gap (scheduler/pacing.ts); 0: at once.
   */
  passGapMs: number;
  /** A resource is reclaimable only once idle this long and with nothing destroyed on it for as long. */
  reclaimGraceMs: number;
  transactionTimeoutMs: number;
  /** How soon a resource's setup step looks again when its blueprint says "not yet". */
  activationPollMs: number;
  /** How often an ACTIVE resource whose implementation has a health check (checkResource) is checked. */
  healthCheckIntervalMs: number;
  /** A resource's teardown is tried this often before it is destroyed anyway (failure logged). */
  teardownAttempts: number;
  /** A lease whose resources keep breaking while they open gives up (breaks) after this many. */
  maxBrokenResourcesPerLease: number;
  /** A warm pool whose builds fail (or whose last few broke while opening) waits this long to try again. */
  warmPoolRetryMs: number;
  /** Bounds on what a lease request may carry as attributes; a request past one is a ValidationError. */
  leaseAttributeLimits: LeaseAttributeLimits;
}

export interface LeaseAttributeLimits {
  maxKeys: number;
  /** Of one value, as JSON. */
  maxValueLength: number;
  /** Of all of them, as JSON, in UTF-8 bytes. */
  maxTotalBytes: number;
}

export const defaultAllocatorOptions: AllocatorOptions = {
  clock: () => new Date(),
  backoffBaseMs: 250,
  backoffCapMs: 15_000,
  idleRetryMs: 60_000,
  random: Math.random,
  agingIntervalMs: 5 * 60_000,
  passGapMs: 0,
  reclaimGraceMs: 5 * 60_000,
  transactionTimeoutMs: 30_000,
  activationPollMs: 1_000,
  healthCheckIntervalMs: 60_000,
  teardownAttempts: 5,
  maxBrokenResourcesPerLease: 3,
  warmPoolRetryMs: 30_000,
  leaseAttributeLimits: { maxKeys: 64, maxValueLength: 1_024, maxTotalBytes: 16_384 },
};

export function allocatorOptions(overrides: Partial<AllocatorOptions> = {}): AllocatorOptions {
  return { ...defaultAllocatorOptions, ...overrides };
}
