// npx tsx bench/cpu-per-grant.ts [N]: server CPU (user + system, from /proc) per operation for a
// GraphQL query that reads nothing (the HTTP and GraphQL stack's own cost per request), the same
// with an API token (what authenticating a request adds), one with one read, and per grant
// (requestLease until ACTIVE on a leasesChanged subscription) on a filled 64-host pool; a build of
// another commit can be measured the same way for a ratio on one machine at one time.
// Grants are then measured at 1, 4 and 16 clients: the more clients, the more leases each
// scheduling pass grants, and a least-squares fit over the three runs splits the server's CPU
// into what each pass costs whatever it grants and what each grant adds (request, events, writes).
// Each line also gives PostgreSQL's CPU per operation (its backends for the bench's database).
// --gaps measures instead one client's query and grant with a pause of 0, 5 and 20 ms after each
// (twice, alternating): what a request costs when it reaches a server that has been idle for a
// while, as the grant row's requests, sent one at a time, often do, against one sent back to back.
// `npm run bench` builds dist/ first; this does not.
import { createHostPool, gql, LeaseWatcher, passesBetween, passReading, requestLeases, wsClient } from './client.js';
import { createBenchDatabase } from './database.js';
import { cpuMs, postgresCpuMs, startBenchServer, syscallReading } from './servers.js';
import { closedLoop } from './stats.js';
import { countArg } from './args.js';

const n = countArg(600);
const gaps = process.argv.includes('--gaps');
const db = await createBenchDatabase();
const server = await startBenchServer({ databaseUrl: db.url, poolSize: 10, workerConcurrency: 4 });
const database = new URL(db.url).pathname.slice(1);
const measure = async (label: string, count: number, run: () => Promise<unknown>, concurrency = 8) => {
  const before = { server: cpuMs(server.pid), postgres: postgresCpuMs(database), calls: syscallReading(server.pid) };
  const at = performance.now();
  await closedLoop(count, concurrency, run);
  const cpu = cpuMs(server.pid) - before.server;
  const postgres = postgresCpuMs(database) - before.postgres;
  const calls = syscallReading(server.pid);
  const per = (value: number) => (value / count).toFixed(2);
  console.log(
    `${label.padEnd(48)} ${per(cpu)} ms CPU/op  ${per(performance.now() - at)} ms wall/op  PostgreSQL ${per(postgres)} ms CPU/op`,
  );
  console.log(
    `${''.padEnd(48)} server: ${per(calls.userMs - before.calls.userMs)} user + ${per(calls.systemMs - before.calls.systemMs)} system ms/op; ${per(calls.writes - before.calls.writes)} writes, ${per(calls.reads - before.calls.reads)} reads/op (system calls)`,
  );
  return cpu;
};
/** Least squares for cpu = perGrant × grants + perPass × passes (two unknowns, the normal equations). */
const fit = (runs: { cpu: number; grants: number; passes: number }[]) => {
  const sum = (f: (r: (typeof runs)[number]) => number) => runs.reduce((total, r) => total + f(r), 0);
  const [gg, pp, gp] = [sum((r) => r.grants ** 2), sum((r) => r.passes ** 2), sum((r) => r.grants * r.passes)];
  const [gc, pc] = [sum((r) => r.grants * r.cpu), sum((r) => r.passes * r.cpu)];
  const det = gg * pp - gp * gp;
  return { perGrant: (gc * pp - pc * gp) / det, perPass: (pc * gg - gc * gp) / det };
};
try {
  await createHostPool(server.graphqlUrl, 'grant', 64);
  const { createApiToken } = await gql<{ createApiToken: { token: string } }>(
    server.graphqlUrl,
    'mutation { createApiToken(input: { name: "bench", principalName: "bench-ci" }) { ... on CreateApiTokenPayload { token } } }',
  );
  const client = wsClient(server.graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(server.graphqlUrl, 'grant');
  const grant = async () => {
    const [id] = await requestLeases(server.graphqlUrl, { resourceType: 'grant' });
    await watcher.when(id!, 'ACTIVE', 60_000);
  };
  // Warm-up: enough requests for the JIT to have compiled the request path (a few hundred were
  // not), and a pool whose resources all exist.
  await closedLoop(Math.max(1_000, n), 8, () => gql(server.graphqlUrl, '{ viewer { id } }'));
  await closedLoop(Math.max(200, n / 2), 8, grant);
  if (gaps) {
    for (const round of [1, 2]) {
      for (const gapMs of [0, 5, 20]) {
        const pause = () => new Promise((resolve) => setTimeout(resolve, gapMs));
        const apart = `${gapMs} ms apart, round ${round}`;
        await measure(
          `{ viewer { id } }, ${apart}`,
          n / 4,
          () => gql(server.graphqlUrl, '{ viewer { id } }').then(pause),
          1,
        );
        await measure(`grant, ${apart}`, n / 4, () => grant().then(pause), 1);
      }
    }
  } else {
    await measure('query { __typename }', n, () => gql(server.graphqlUrl, '{ __typename }'));
    await measure('query { __typename } with an API token', n, () =>
      gql(server.graphqlUrl, '{ __typename }', undefined, createApiToken.token),
    );
    await measure('query { viewer { id } }', n, () => gql(server.graphqlUrl, '{ viewer { id } }'));
    await measure('grant (requestLease → ACTIVE on subscription)', n, grant);
    const runs = [];
    for (const clients of [1, 4, 16]) {
      const passesBefore = await passReading(server.graphqlUrl, 'grant');
      const cpu = await measure(`grant, ${clients} client${clients > 1 ? 's' : ''}`, n, grant, clients);
      const passes = passesBetween(passesBefore, await passReading(server.graphqlUrl, 'grant'));
      console.log(`${''.padEnd(48)} ${passes.passes} passes, ${passes.grantsEach.toFixed(1)} grants each`);
      runs.push({ cpu, grants: n, passes: passes.passes });
    }
    const { perGrant, perPass } = fit(runs);
    console.log(
      `fit over the three: each pass ${perPass.toFixed(2)} ms CPU whatever it grants, each grant ${perGrant.toFixed(2)} ms more`,
    );
  }
  watcher.close();
  await client.dispose();
} finally {
  await server.stop();
  await db.drop();
}
