/**
 * A bound on the work in flight in this process, in total and per principal. Past it a request is
 * refused at once instead of queueing: a queue without bound turns overload into 30-second
 * timeouts for everyone, while a quick refusal with Retry-After lets clients back off and keeps
 * what was admitted within its usual latency. Counting is synchronous and in memory, so a refusal
 * costs no database round trip.
 */
export type Refusal = { scope: 'process' | 'principal'; retryAfterSeconds: number };

/** What bounds the whole process: a count that may move, and may depend on more than the count. */
export interface ProcessBound {
  /** Whether one more may start while `inFlight` run. */
  allows(inFlight: number): boolean;
  /** A request that started with `inFlight` running (itself included) held its slot for `ms`. */
  observe(ms: number, inFlight: number): void;
}

/** MAX_IN_FLIGHT as it is, with adaptation turned off. */
export function fixedBound(limit: number): ProcessBound {
  return { allows: (inFlight) => inFlight < limit, observe: () => {} };
}

export interface Ticket {
  /** Idempotent: a request may end through several paths (finished, aborted). */
  release(): void;
}

export class Admission {
  private total = 0;
  private readonly perPrincipal = new Map<string, number>();

  constructor(
    private readonly bound: ProcessBound,
    private readonly maxInFlightPerPrincipal: number,
    /** Told of every refusal and of every change of the work in flight (metrics). */
    private readonly observer: { refused(refusal: Refusal): void; inFlight(count: number): void } = {
      refused: () => {},
      inFlight: () => {},
    },
    private readonly retryAfterSeconds = 1,
  ) {}

  /** Why `principal` may not start work now, or null when it may. */
  check(principal: string): Refusal | null {
    const refusal = this.refusal(principal);
    if (refusal) this.observer.refused(refusal);
    return refusal;
  }

  private refusal(principal: string): Refusal | null {
    if (!this.bound.allows(this.total)) return { scope: 'process', retryAfterSeconds: this.retryAfterSeconds };
    if ((this.perPrincipal.get(principal) ?? 0) >= this.maxInFlightPerPrincipal) {
      return { scope: 'principal', retryAfterSeconds: this.retryAfterSeconds };
    }
    return null;
  }

  /** A ticket to hold while the work runs, or the refusal. */
  enter(principal: string): Ticket | Refusal {
    const refusal = this.check(principal);
    if (refusal) return refusal;
    this.total += 1;
    this.observer.inFlight(this.total);
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    const started = performance.now();
    const running = this.total;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.bound.observe(performance.now() - started, running);
        this.total -= 1;
        this.observer.inFlight(this.total);
        const left = (this.perPrincipal.get(principal) ?? 1) - 1;
        // Principals without work in flight are forgotten, so the map stays as small as the work.
        if (left === 0) this.perPrincipal.delete(principal);
        else this.perPrincipal.set(principal, left);
      },
    };
  }

  get inFlight(): number {
    return this.total;
  }
}

export function isRefusal(value: Ticket | Refusal): value is Refusal {
  return 'scope' in value;
}

/** The refusal as a GraphQL error body: what HTTP and graphql-ws clients both get. */
export function refusalError(refusal: Refusal): { message: string; extensions: Record<string, unknown> } {
  return refusal.scope === 'process'
    ? {
        message: 'The server is at capacity; retry shortly.',
        extensions: { code: 'OVERLOADED', retryAfterSeconds: refusal.retryAfterSeconds },
      }
    : {
        message: 'Too much work in flight for this principal; wait for some to finish and retry.',
        extensions: { code: 'TOO_MANY_IN_FLIGHT', retryAfterSeconds: refusal.retryAfterSeconds },
      };
}

/**
 * Who a request counts against before it is authenticated (authenticating is work that is being
 * shed): the credential it presents, or the anonymous local admin. A token belongs to one
 * principal, so this is the principal as far as one token can reach.
 */
export function principalKey(authorization: string | null | undefined): string {
  return authorization ? `token:${authorization.replace(/^bearer\s+/i, '')}` : 'anonymous';
}
