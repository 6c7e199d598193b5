// docs/clients.md's typed client, as a program: requests a host lease, follows its events until
// it is ACTIVE, prints where to connect, releases it and follows it to DESTROYED.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import {
  LeaseDocument,
  LeaseEventsDocument,
  ReleaseLeaseDocument,
  RequestLeaseDocument,
  type LeaseEventsSubscription,
  type TypedDocumentString,
} from './gql/graphql.js';

const url = `${process.env['DRYDOCK_URL'] ?? 'http://127.0.0.1:4000'}/graphql`;
const token = process.env['DRYDOCK_TOKEN'] ?? ''; // not needed against a server on 127.0.0.1

async function execute<R, V>(document: TypedDocumentString<R, V>, variables: V): Promise<R> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json()) as { data?: R; errors?: { message: string }[] };
  if (!body.data) throw new Error(body.errors?.map((e) => e.message).join('; '));
  return body.data;
}

// Node 20 has no global WebSocket: graphql-ws takes the `ws` package's (browsers need nothing).
const ws = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  connectionParams: token ? { authorization: `Bearer ${token}` } : {},
});

const { requestLease } = await execute(RequestLeaseDocument, { input: { resourceType: 'host' } });
if (requestLease.__typename !== 'RequestLeasePayload') throw new Error(requestLease.message);
const leaseId = requestLease.leases[0]!.id;
console.log(`requested lease ${requestLease.leases[0]!.databaseId}`);

// after: "0" replays the lease's whole history, then goes on live; the stream completes once the
// lease is DESTROYED. Pass the last cursor you saw to resume after a reconnect.
await new Promise<void>((resolve, reject) => {
  let released = false;
  ws.subscribe<LeaseEventsSubscription>(
    { query: LeaseEventsDocument.toString(), variables: { leaseId, after: '0' } },
    {
      next: async ({ data }) => {
        if (!data) return;
        console.log(`${data.leaseEvents.log.type} -> ${data.leaseEvents.status}`);
        if (data.leaseEvents.status !== 'ACTIVE' || released) return;
        released = true;
        // Read the lease itself when you need its current status and resource.
        const { lease } = await execute(LeaseDocument, { id: leaseId });
        console.log('connect to', JSON.stringify(lease?.resource?.attributes));
        const { releaseLease } = await execute(ReleaseLeaseDocument, { id: leaseId });
        if (releaseLease.__typename !== 'ReleaseLeasePayload') reject(new Error(releaseLease.message));
      },
      error: reject,
      complete: () => {
        console.log('lease destroyed');
        resolve();
      },
    },
  );
});
await ws.dispose();
