// The failures a blueprint hook throws. On the ground floor: blueprints, transports and the
// allocator all use them, and blueprints sit below the allocator.

/** A blueprint hook failed in a way that may pass: the lease or resource waits and retries. */
export class TemporaryFailure extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TemporaryFailure';
  }
}

/** A blueprint hook failed for good: the lease or resource is broken, with this message logged. */
export class PermanentFailure extends Error {
  /**
   * Set when any resource built for the same lease would fail the same way (a missing
   * authorization): the lease breaks at once instead of building more resources to no end.
   */
  readonly hopeless: boolean;
  constructor(message: string, options: { hopeless?: boolean } = {}) {
    super(message);
    this.name = 'PermanentFailure';
    this.hopeless = options.hopeless ?? false;
  }
}
