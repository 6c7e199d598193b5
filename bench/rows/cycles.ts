import { LeaseWatcher, releaseLease, requestLeases, wsClient } from '../client.js';
import { now } from '../stats.js';

export interface CycleResult {
  servers: number;
  clients: number;
  cycles: number;
  failed: number;
  seconds: number;
  perSecond: number;
}

/**
 * Closed loop: each client requests a lease, waits for ACTIVE, releases it and waits for
 * DESTROYED, then starts over; clients are spread evenly over the servers' URLs.
 */
export async function leaseCycles(
  graphqlUrls: string[],
  resourceType: string,
  options: { clients: number; seconds: number; maxCycles: number },
): Promise<CycleResult> {
  const watchers = await Promise.all(
    graphqlUrls.map(async (url) => {
      const client = wsClient(url);
      const watcher = new LeaseWatcher(client);
      await watcher.start(url, resourceType);
      return { client, watcher };
    }),
  );
  let cycles = 0;
  let failed = 0;
  const start = now();
  const deadline = start + options.seconds * 1_000;
  await Promise.all(
    Array.from({ length: options.clients }, async (_, i) => {
      const url = graphqlUrls[i % graphqlUrls.length]!;
      // Every server's subscription sees every lease (events cross processes through PostgreSQL).
      const { watcher } = watchers[i % watchers.length]!;
      while (now() < deadline && cycles + failed < options.maxCycles) {
        try {
          const [id] = await requestLeases(url, { resourceType });
          await watcher.when(id!, 'ACTIVE', 30_000);
          await releaseLease(url, id!);
          await watcher.when(id!, 'DESTROYED', 30_000);
          watcher.forget(id!);
          cycles++;
        } catch (error) {
          failed++;
          if (failed <= 3) console.error(`  cycle failed: ${(error as Error).message}`);
        }
      }
    }),
  );
  const seconds = (now() - start) / 1_000;
  for (const { client, watcher } of watchers) {
    watcher.close();
    await client.dispose();
  }
  return {
    servers: graphqlUrls.length,
    clients: options.clients,
    cycles,
    failed,
    seconds,
    perSecond: cycles / seconds,
  };
}
