// npm run build && npx tsx bench/grant-path.ts [--rate=200] [--seconds=15]
//
// Where a grant's latency goes, as the grant row measures it (open-loop requests on a 64-host pool,
// each timed from sending requestLease until its ACTIVE change arrives on a leasesChanged
// subscription), split at the times the service itself records, which share this machine's clock:
// the lease's createdAt (the request reached the allocator), its activatedAt (the scheduling pass
// that granted it began), and the server's own histograms of its passes. The grant row says how
// long; this says which step to work on. Requests sent in the first 5 s are left out, as in the
// row's warm figures.

import pg from 'pg';
import { createHostPool, gql, LeaseWatcher, passesBetween, passReading, wsClient, type PassReading } from './client.js';
import { createBenchDatabase } from './database.js';
import { WARM_SECONDS } from './rows/grant-latency.js';
import { cpuMs, startBenchServer } from './servers.js';
import { now, percentile, sleep } from './stats.js';

const arg = (name: string, fallback: number) => {
  const given = process.argv.find((a) => a.startsWith(`--${name}=`));
  return given ? Number(given.split('=')[1]) : fallback;
};
const rate = arg('rate', 200);
const seconds = arg('seconds', 15);

const REQUEST = `mutation ($input: RequestLeaseInput!) {
  requestLease(input: $input) { ... on RequestLeasePayload { leases { id databaseId } } ... on Error { message } }
}`;

/** Client times (performance.now) on the epoch's scale, where the server's timestamps are. */
const epochMs = (at: number) => performance.timeOrigin + at;

interface Timed {
  id: number;
  sent: number;
  answered: number;
  seen: number;
}

const db = await createBenchDatabase();
const server = await startBenchServer({ databaseUrl: db.url, poolSize: 10, workerConcurrency: 4 });
try {
  await createHostPool(server.graphqlUrl, 'grant', 64);
  const client = wsClient(server.graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(server.graphqlUrl, 'grant');
  const timed: Timed[] = [];
  const pending: Promise<void>[] = [];
  const total = Math.round(rate * seconds);
  const start = now();
  let [passesBefore, cpuBefore]: [PassReading | null, number] = [null, 0];
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1_000) / rate - now();
    if (wait > 1) await sleep(wait);
    const sent = now();
    if (i === Math.round(rate * WARM_SECONDS)) {
      passesBefore = await passReading(server.graphqlUrl, 'grant');
      cpuBefore = cpuMs(server.pid);
    }
    pending.push(
      gql<{ requestLease: { leases?: { id: string; databaseId: number }[]; message?: string } }>(
        server.graphqlUrl,
        REQUEST,
        { input: { resourceType: 'grant' } },
      ).then(async ({ requestLease }) => {
        const answered = now();
        const lease = requestLease.leases?.[0];
        if (!lease) throw new Error(`requestLease: ${requestLease.message}`);
        const seen = await watcher.when(lease.id, 'ACTIVE', 30_000);
        if (sent - start >= WARM_SECONDS * 1_000) timed.push({ id: lease.databaseId, sent, answered, seen });
      }),
    );
  }
  await Promise.all(pending);
  const cpuPerGrant = (cpuMs(server.pid) - cpuBefore) / Math.max(1, timed.length);
  const passes = passesBetween(passesBefore!, await passReading(server.graphqlUrl, 'grant'));
  watcher.close();
  await client.dispose();

  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  const { rows } = await reader.query<{ id: number; created: number; activated: number }>(
    `SELECT id, extract(epoch FROM "createdAt") * 1000 AS created, extract(epoch FROM "activatedAt") * 1000 AS activated
     FROM "Lease" WHERE id = ANY($1::int[])`,
    [timed.map((t) => t.id)],
  );
  await reader.end();
  const stamps = new Map(
    rows.map((row) => [row.id, { created: Number(row.created), activated: Number(row.activated) }]),
  );

  const line = (label: string, values: number[]) =>
    console.log(
      `${label.padEnd(58)} ${[50, 90, 99].map((p) => `p${p} ${percentile(values, p).toFixed(1).padStart(6)}`).join('  ')} ms`,
    );
  const span = (from: (t: Timed) => number, to: (t: Timed) => number) => timed.map((t) => to(t) - from(t));
  const created = (t: Timed) => stamps.get(t.id)!.created;
  const activated = (t: Timed) => stamps.get(t.id)!.activated;
  console.log(
    `${rate}/s for ${seconds} s on a 64-host pool; ${timed.length} grants after the first ${WARM_SECONDS} s; ` +
      `server CPU ${cpuPerGrant.toFixed(2)} ms per grant (timestamps in milliseconds)`,
  );
  line(
    'sent → request reached the allocator (HTTP, GraphQL)',
    span((t) => epochMs(t.sent), created),
  );
  line(
    'request reached the allocator → answered (its commit)',
    span(created, (t) => epochMs(t.answered)),
  );
  line('request reached the allocator → its pass began', span(created, activated));
  line(
    'pass began → ACTIVE seen (pass, commit, notify, delivery)',
    span(activated, (t) => epochMs(t.seen)),
  );
  line(
    'sent → ACTIVE seen',
    span(
      (t) => t.sent,
      (t) => t.seen,
    ),
  );
  console.log(
    `scheduling passes: ${passes.passes}, ${passes.meanMs.toFixed(2)} ms on average from the pass's transaction starting to its commit, ` +
      `${passes.grantsEach.toFixed(2)} grants each`,
  );
} finally {
  await server.stop();
  await db.drop();
}
