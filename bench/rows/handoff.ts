import { LeaseWatcher, releaseLease, requestLeases, wsClient } from '../client.js';
import { now, percentile } from '../stats.js';

export interface HandoffResult {
  handoffs: number;
  p50: number;
  p99: number;
}

/**
 * The only built-in blueprint (host-pool) shares a host among any number of leases, so no lease
 * ever waits for another's release. This measures the nearest thing on a one-host pool: from
 * sending the release of the lease on the host to the next lease on it being ACTIVE, the next
 * lease being requested as soon as the release is acknowledged.
 */
export async function handoff(
  graphqlUrl: string,
  resourceType: string,
  options: { handoffs: number; seconds: number },
): Promise<HandoffResult> {
  const client = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(graphqlUrl, resourceType);
  let [current] = await requestLeases(graphqlUrl, { resourceType });
  await watcher.when(current!, 'ACTIVE', 30_000);
  const latencies: number[] = [];
  const deadline = now() + options.seconds * 1_000;
  for (let i = 0; i < options.handoffs && now() < deadline; i++) {
    const start = now();
    await releaseLease(graphqlUrl, current!);
    const [next] = await requestLeases(graphqlUrl, { resourceType });
    const active = await watcher.when(next!, 'ACTIVE', 30_000);
    latencies.push(active - start);
    watcher.forget(current!);
    current = next;
  }
  await releaseLease(graphqlUrl, current!);
  watcher.close();
  await client.dispose();
  return { handoffs: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
