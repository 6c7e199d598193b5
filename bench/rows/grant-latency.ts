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
}

/**
 * Open-loop arrivals at a fixed rate (a late server does not slow the arrivals down, as it would
 * with a closed loop): each lease is timed from the moment its request is sent until its ACTIVE
 * change arrives on the subscription.
 */
export async function grantLatency(
  graphqlUrl: string,
  resourceType: string,
  options: { rate: number; seconds: number; timeoutMs?: number; attributes?: Record<string, unknown> },
): Promise<GrantResult> {
  const client = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(graphqlUrl, resourceType);
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const interval = 1_000 / options.rate;
  const latencies: number[] = [];
  let failed = 0;
  const start = now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    const sent = now();
    inflight.push(
      requestLeases(graphqlUrl, { resourceType, ...(options.attributes ? { attributes: options.attributes } : {}) })
        .then(([id]) => watcher.when(id!, 'ACTIVE', options.timeoutMs ?? 30_000))
        .then((at) => {
          latencies.push(at - sent);
        })
        .catch((error: unknown) => {
          failed++;
          if (failed <= 3) console.error(`  grant failed: ${(error as Error).message}`);
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
  };
}
