// npx tsx bench/cpu-per-grant.ts [N]: server CPU (user + system, from /proc) per operation for a
// GraphQL query that reads nothing (the HTTP and GraphQL stack's own cost per request), the same
// with an API token (what authenticating a request adds), one with one read, and per grant
// (requestLease until ACTIVE on a leasesChanged subscription) on a filled 64-host pool; a build of
// another commit can be measured the same way for a ratio on one machine at one time.
// `npm run bench` builds dist/ first; this does not.
import { createHostPool, gql, LeaseWatcher, requestLeases, wsClient } from './client.js';
import { createBenchDatabase } from './database.js';
import { cpuMs, startBenchServer } from './servers.js';

const n = Number(process.argv[2] ?? 600);
const concurrency = 8;
const db = await createBenchDatabase();
const server = await startBenchServer({ databaseUrl: db.url, poolSize: 10, workerConcurrency: 4 });
const inParallel = async (count: number, run: () => Promise<unknown>) => {
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started++ < count) await run();
    }),
  );
};
const measure = async (label: string, count: number, run: () => Promise<unknown>) => {
  const before = cpuMs(server.pid);
  const at = performance.now();
  await inParallel(count, run);
  const cpu = (cpuMs(server.pid) - before) / count;
  console.log(
    `${label.padEnd(44)} ${cpu.toFixed(2)} ms CPU/op  ${((performance.now() - at) / count).toFixed(2)} ms wall/op`,
  );
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
  await inParallel(Math.max(1_000, n), () => gql(server.graphqlUrl, '{ viewer { id } }'));
  await inParallel(Math.max(200, n / 2), grant);
  await measure('query { __typename }', n, () => gql(server.graphqlUrl, '{ __typename }'));
  await measure('query { __typename } with an API token', n, () =>
    gql(server.graphqlUrl, '{ __typename }', undefined, createApiToken.token),
  );
  await measure('query { viewer { id } }', n, () => gql(server.graphqlUrl, '{ viewer { id } }'));
  await measure('grant (requestLease → ACTIVE on subscription)', n, grant);
  watcher.close();
  await client.dispose();
} finally {
  await server.stop();
  await db.drop();
}
