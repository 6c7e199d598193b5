// A lease holder in a process of its own, for tests that kill it: it keeps one lease alive either
// by heartbeats (`heartbeat`) or by holding its leaseEvents subscription open (`subscription`),
// and prints "holding" once it does. Usage: HOLDER_TOKEN=... holder-process.ts <graphql url> <lease id> <mode>.
import { wsClient } from './ws.js';

const [url, leaseId, mode] = process.argv.slice(2) as [string, string, 'heartbeat' | 'subscription'];
const authorization = `Bearer ${process.env['HOLDER_TOKEN']}`;

if (mode === 'heartbeat') {
  const beat = async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({
        query: 'mutation ($id: ID!) { heartbeatLease(id: $id) { __typename } }',
        variables: { id: leaseId },
      }),
    });
    return ((await response.json()) as { data?: { heartbeatLease?: { __typename: string } } }).data?.heartbeatLease
      ?.__typename;
  };
  const first = await beat();
  if (first !== 'LeasePayload') throw new Error(`heartbeat refused: ${first}`);
  console.log('holding');
  setInterval(() => void beat(), 200);
} else {
  const client = wsClient(url, { authorization });
  client.subscribe(
    { query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id) { cursor } }', variables: { id: leaseId } },
    { next: () => {}, error: (error) => console.error(error), complete: () => {} },
  );
  client.on('connected', () => console.log('holding'));
}
