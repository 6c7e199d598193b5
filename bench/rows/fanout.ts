import type { Client } from 'graphql-ws';
import { LeaseWatcher, releaseLease, requestLeases, wsClient } from '../client.js';
import { rssBytes } from '../servers.js';
import { now, percentile, sleep } from '../stats.js';

export interface FanoutResult {
  subscribers: number;
  connected: number;
  delivered: number;
  connectSeconds: number;
  releaseMs: number;
  p50: number;
  p99: number;
  max: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerSubscriber: number;
}

type Event = { leaseEvents: { cursor: string; log: { type: string } } };

/**
 * N graphql-ws connections, each following the same lease; one release; how long until each
 * subscriber has the release's event. Latency is counted from sending the release mutation (the
 * commit is somewhere inside that request), on this process's clock.
 */
export async function fanout(
  graphqlUrl: string,
  serverPid: number,
  resourceType: string,
  options: { subscribers: number; batch: number; timeoutMs: number },
): Promise<FanoutResult> {
  const control = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(control);
  await watcher.start(graphqlUrl, resourceType);
  const [leaseId] = await requestLeases(graphqlUrl, { resourceType });
  await watcher.when(leaseId!, 'ACTIVE', 30_000);
  watcher.close();
  await control.dispose();
  global.gc?.();
  await sleep(1_000);
  const rssBefore = rssBytes(serverPid);

  const clients: Client[] = [];
  const stops: (() => void)[] = [];
  const received: number[] = [];
  let releaseSentAt = Number.POSITIVE_INFINITY;
  let connected = 0;
  const connectStart = now();
  for (let i = 0; i < options.subscribers; i += options.batch) {
    const batch = Math.min(options.batch, options.subscribers - i);
    await Promise.all(
      Array.from(
        { length: batch },
        () =>
          new Promise<void>((resolve) => {
            const client = wsClient(graphqlUrl);
            clients.push(client);
            let ready = false;
            let got = false;
            const timer = setTimeout(() => {
              if (!ready) resolve();
            }, 30_000);
            stops.push(
              client.subscribe<Event>(
                {
                  query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor log { type } } }',
                  variables: { id: leaseId },
                },
                {
                  next: ({ data }) => {
                    const at = now();
                    if (!ready) {
                      // The replay of the history shows the subscription is in place.
                      ready = true;
                      connected++;
                      clearTimeout(timer);
                      resolve();
                    }
                    if (!got && at > releaseSentAt && data?.leaseEvents.log.type.includes('release')) {
                      got = true;
                      received.push(at - releaseSentAt);
                    }
                  },
                  error: () => resolve(),
                  complete: () => {},
                },
              ),
            );
          }),
      ),
    );
  }
  const connectSeconds = (now() - connectStart) / 1_000;
  await sleep(2_000);
  const rssAfter = rssBytes(serverPid);

  releaseSentAt = now();
  await releaseLease(graphqlUrl, leaseId!);
  const releaseMs = now() - releaseSentAt;
  const deadline = now() + options.timeoutMs;
  while (received.length < connected && now() < deadline) await sleep(20);

  for (const stop of stops) stop();
  await Promise.all(clients.map((client) => client.dispose()));
  return {
    subscribers: options.subscribers,
    connected,
    delivered: received.length,
    connectSeconds,
    releaseMs,
    p50: percentile(received, 50),
    p99: percentile(received, 99),
    max: percentile(received, 100),
    rssBeforeBytes: rssBefore,
    rssAfterBytes: rssAfter,
    bytesPerSubscriber: (rssAfter - rssBefore) / Math.max(1, connected),
  };
}
