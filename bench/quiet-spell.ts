// npm run build && npx tsx bench/quiet-spell.ts [--bursts=5] [--quiet=12] [--size=40]
//
// Leases arrive in bursts after quiet spells (a CI fleet's jobs start together). This times bursts
// of `--size` leases requested at once on a 64-host pool (each from its request until ACTIVE on a
// leasesChanged subscription, then all released), first back to back, two seconds apart, then each
// after `--quiet` seconds with no traffic: a server whose first requests after a quiet spell wait
// for connections or re-prepare statements shows it as the later bursts being slower.
import { createHostPool, LeaseWatcher, releaseLease, requestLeases, wsClient } from './client.js';
import { createBenchDatabase } from './database.js';
import { startBenchServer } from './servers.js';
import { now, percentile, sleep } from './stats.js';
import { numberArg } from './args.js';

const bursts = numberArg('bursts', 5);
const quietSeconds = numberArg('quiet', 12);
const size = numberArg('size', 40);

const db = await createBenchDatabase();
const server = await startBenchServer({ databaseUrl: db.url, poolSize: 10, workerConcurrency: 4 });
const client = wsClient(server.graphqlUrl);
try {
  await createHostPool(server.graphqlUrl, 'burst', 64);
  const watcher = new LeaseWatcher(client);
  await watcher.start(server.graphqlUrl, 'burst');
  const burst = async (label: string) => {
    const latencies: number[] = [];
    const ids = await Promise.all(
      Array.from({ length: size }, async () => {
        const sent = now();
        const [id] = await requestLeases(server.graphqlUrl, { resourceType: 'burst' });
        latencies.push((await watcher.when(id!, 'ACTIVE', 30_000)) - sent);
        return id!;
      }),
    );
    await Promise.all(ids.map((id) => releaseLease(server.graphqlUrl, id)));
    console.log(
      `${label.padEnd(26)} p50 ${percentile(latencies, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(latencies, 99).toFixed(1).padStart(6)} ms`,
    );
  };
  for (let i = 0; i < bursts; i++) {
    await burst(`back to back (${i + 1})`);
    await sleep(2_000);
  }
  for (let i = 0; i < bursts; i++) {
    await sleep(quietSeconds * 1_000);
    await burst(`after ${quietSeconds} s quiet (${i + 1})`);
  }
} finally {
  await client.dispose();
  await server.stop();
  await db.drop();
}
process.exit(0);
