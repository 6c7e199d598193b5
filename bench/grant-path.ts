// npm run build && npx tsx bench/grant-path.ts [--rate=200] [--seconds=15] [--timeline] [--warm-up=N]
//
// Where a grant's latency goes, as the grant row measures it (open-loop requests on a 64-host pool,
// each timed from sending requestLease until its ACTIVE change arrives on a leasesChanged
// subscription), split at the times the service itself records, which share this machine's clock:
// the lease's createdAt (the request reached the allocator), its activatedAt (the scheduling pass
// that granted it began), and the server's own histograms of its passes. The grant row says how
// long; this says which step to work on. Requests sent in the first 5 s are left out, as in the
// row's warm figures (the passes and the CPU cover the whole row, as in the bench).
// --timeline also prints the same steps' medians for each half second of those first 5 s, where a
// newly started server's backlog shows. --warm-up=N has a separate process make N grants (10
// clients) on the server before the row, so that the server is warm and the load generator is not:
// what the first seconds then lose is the server's own start, not the client's.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import pg from 'pg';
import { projectRoot } from '../src/db/migrations-folder.js';
import { createHostPool, passesBetween, passReading } from './client.js';
import { createBenchDatabase } from './database.js';
import { grantLatency, WARM_SECONDS, type GrantTimes } from './rows/grant-latency.js';
import { cpuMs, startBenchServer } from './servers.js';
import { percentile } from './stats.js';
import { numberArg } from './args.js';

const rate = numberArg('rate', 200);
const seconds = numberArg('seconds', 15);
const warmUp = numberArg('warm-up', 0);
const timeline = process.argv.includes('--timeline');

/** Client times (performance.now) on the epoch's scale, where the server's timestamps are. */
const epochMs = (at: number) => performance.timeOrigin + at;

type Timed = GrantTimes & { databaseId: number };

const db = await createBenchDatabase();
const server = await startBenchServer({ databaseUrl: db.url, poolSize: 10, workerConcurrency: 4 });
try {
  await createHostPool(server.graphqlUrl, 'grant', 64);
  if (warmUp > 0) {
    // The child runs under the loader this script runs under (tsx), which execArgv carries.
    const child = join(projectRoot, 'bench', 'warm-up-process.ts');
    execFileSync(process.execPath, [...process.execArgv, child, server.graphqlUrl, 'grant', String(warmUp), '10'], {
      stdio: 'inherit',
    });
  }
  const all: Timed[] = [];
  const [passesBefore, cpuBefore] = [await passReading(server.graphqlUrl, 'grant'), cpuMs(server.pid)];
  const row = await grantLatency(server.graphqlUrl, 'grant', {
    rate,
    seconds,
    onGrant: (grant) => {
      all.push({ ...grant, databaseId: Number(decodeGlobalID(grant.id).id) });
    },
  });
  // Over the whole row, as the bench's grant row reads them: its first seconds included.
  const cpuPerGrant = (cpuMs(server.pid) - cpuBefore) / Math.max(1, row.granted);
  const passes = passesBetween(passesBefore, await passReading(server.graphqlUrl, 'grant'));

  const timed = all.filter((t) => t.warm);
  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  const { rows } = await reader.query<{ id: number; created: number; activated: number }>(
    `SELECT id, extract(epoch FROM "createdAt") * 1000 AS created, extract(epoch FROM "activatedAt") * 1000 AS activated
     FROM "Lease" WHERE id = ANY($1::int[])`,
    [all.map((t) => t.databaseId)],
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
  const created = (t: Timed) => stamps.get(t.databaseId)!.created;
  const activated = (t: Timed) => stamps.get(t.databaseId)!.activated;
  if (timeline) printTimeline(all, created, activated);
  console.log(
    `${rate}/s for ${seconds} s on a 64-host pool${warmUp > 0 ? ` (server warmed by ${warmUp} grants)` : ''} (${row.granted}/${row.sent} granted); ${timed.length} grants after ` +
      `the first ${WARM_SECONDS} s; over the whole row, server CPU ${cpuPerGrant.toFixed(2)} ms per grant (times in ms)`,
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
    `the whole row, its first ${WARM_SECONDS} s included: sent → ACTIVE seen p50 ${row.p50.toFixed(1)}, p99 ${row.p99.toFixed(1)} ms`,
  );
  console.log(
    `scheduling passes: ${passes.passes}, ${passes.meanMs.toFixed(2)} ms on average from the pass's transaction starting to its commit, ` +
      `${passes.grantsEach.toFixed(2)} grants each`,
  );
} finally {
  await server.stop();
  await db.drop();
}

/** The steps' medians (ms) of the grants sent in each half second of the first WARM_SECONDS. */
function printTimeline(all: Timed[], created: (t: Timed) => number, activated: (t: Timed) => number): void {
  const first = Math.min(...all.map((t) => t.sent));
  const halves = new Map<number, Timed[]>();
  for (const t of all) {
    const half = Math.floor((t.sent - first) / 500);
    if (half >= WARM_SECONDS * 2) continue;
    const group = halves.get(half);
    if (group) group.push(t);
    else halves.set(half, [t]);
  }
  const median = (group: Timed[], f: (t: Timed) => number) => percentile(group.map(f), 50).toFixed(1).padStart(7);
  console.log('sent at   grants   reach  commit  to pass  pass → seen    total (medians, ms)');
  for (const [half, group] of [...halves].sort((a, b) => a[0] - b[0]))
    console.log(
      `${(half / 2).toFixed(1).padStart(5)} s ${String(group.length).padStart(8)} ` +
        [
          median(group, (t) => created(t) - epochMs(t.sent)),
          median(group, (t) => epochMs(t.answered) - created(t)),
          median(group, (t) => activated(t) - created(t)),
          median(group, (t) => epochMs(t.seen) - activated(t)),
          median(group, (t) => t.seen - t.sent),
        ].join(' '),
    );
}
