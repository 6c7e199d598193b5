import { LeaseWatcher, requestLeases, wsClient } from '../client.js';
import { now, percentile, sleep } from '../stats.js';

export interface GrantResult {
  rate: number;
  sent: number;
  granted: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
  /**
   * The same over the requests sent after the first WARM_SECONDS (none in a shorter run): the
   * server's first seconds (code not yet optimized by the JIT, connections and prepared statements
   * opening) are a start-up cost, not what a running service gives; both are reported.
   */
  steady: { count: number; p50: number; p99: number } | null;
  /** Grants seen ACTIVE from the moment the first warm request went out: what `onWarm`'s reading is divided by. */
  seenSinceWarm: number;
}

export const WARM_SECONDS = 5;

export interface GrantTimes {
  /** The lease's global id. */
  id: string;
  sent: number;
  answered: number;
  seen: number;
  warm: boolean;
}

/** fetch's own message ("fetch failed") hides what failed: its cause says. */
function describe(error: unknown): string {
  const { message, cause } = error as Error;
  return cause instanceof Error
    ? `${message}: ${(cause as NodeJS.ErrnoException).code ?? ''} ${cause.message}`
    : message;
}

/**
 * Open-loop arrivals at a fixed rate (a late server does not slow the arrivals down, as it would
 * with a closed loop): each lease is timed from the moment its request is sent until its ACTIVE
 * change arrives on the subscription.
 */
export async function grantLatency(
  graphqlUrl: string,
  resourceType: string,
  options: {
    rate: number;
    seconds: number;
    timeoutMs?: number;
    attributes?: Record<string, unknown>;
    /** Told of each grant: when it was sent, answered and seen ACTIVE (performance.now), and whether the server was warm. */
    onGrant?: (grant: GrantTimes) => void;
    /** Called once, as the first request after the first WARM_SECONDS goes out (a cost reading starts there). */
    onWarm?: () => void;
  },
): Promise<GrantResult> {
  const client = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(graphqlUrl, resourceType);
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const interval = 1_000 / options.rate;
  const latencies: number[] = [];
  const steady: number[] = [];
  let failed = 0;
  let warmFrom = Number.POSITIVE_INFINITY;
  let seenSinceWarm = 0;
  const start = now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    const sent = now();
    const warm = sent - start >= WARM_SECONDS * 1_000;
    if (warm && warmFrom === Number.POSITIVE_INFINITY) {
      warmFrom = sent;
      options.onWarm?.();
    }
    inflight.push(
      requestLeases(graphqlUrl, { resourceType, ...(options.attributes ? { attributes: options.attributes } : {}) })
        .then(async ([id]) => {
          const answered = now();
          const at = await watcher.when(id!, 'ACTIVE', options.timeoutMs ?? 30_000);
          latencies.push(at - sent);
          if (warm) steady.push(at - sent);
          if (at >= warmFrom) seenSinceWarm++;
          options.onGrant?.({ id: id!, sent, answered, seen: at, warm });
        })
        .catch((error: unknown) => {
          failed++;
          if (failed <= 3) console.error(`  grant failed: ${describe(error)}`);
        }),
    );
  }
  await Promise.all(inflight);
  const seconds = (now() - start) / 1_000;
  watcher.close();
  await client.dispose();
  return {
    rate: options.rate,
    sent: total,
    granted: latencies.length,
    failed,
    seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    steady:
      steady.length > 0 ? { count: steady.length, p50: percentile(steady, 50), p99: percentile(steady, 99) } : null,
    seenSinceWarm,
  };
}
