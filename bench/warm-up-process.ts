// A child process of bench/grant-path.ts (--warm-up=N): N grants on one server from
// `clients` closed-loop clients, each a request and its ACTIVE change, then exit. A process of its
// own, so that what it warms is the server and not the load generator that times the row after it.
//
//   tsx bench/warm-up-process.ts GRAPHQL_URL RESOURCE_TYPE COUNT CLIENTS
import { LeaseWatcher, requestLeases, wsClient } from './client.js';
import { closedLoop } from './stats.js';

const [graphqlUrl, resourceType, count, clients] = process.argv.slice(2);
if (!graphqlUrl || !resourceType || !(Number(count) >= 0) || !(Number(clients) >= 1)) {
  console.error('usage: tsx bench/warm-up-process.ts GRAPHQL_URL RESOURCE_TYPE COUNT CLIENTS');
  process.exit(2);
}
const client = wsClient(graphqlUrl);
const watcher = new LeaseWatcher(client);
await watcher.start(graphqlUrl, resourceType);
await closedLoop(Number(count), Number(clients), async () => {
  const [id] = await requestLeases(graphqlUrl, { resourceType });
  await watcher.when(id!, 'ACTIVE', 60_000);
});
watcher.close();
await client.dispose();
