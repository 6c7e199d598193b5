import type { Client } from 'graphql-ws';
import { activeLease, releaseLease, serverMetric, wsClient } from '../client.js';
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
  /**
   * RSS growth over the second half of the subscribers ÷ their number: what one more costs, without
   * what the first ones set up once (compiled code, pools, heap pages).
   */
  marginalBytesPerSubscriber: number;
}

export type LeaseEvent = { leaseEvents: { cursor: string; log: { type: string } } };

/** What a dashboard following one lease live subscribes to (no replay, so all share one execution). */
export const followLease = 'subscription ($id: ID!) { leaseEvents(leaseId: $id) { cursor log { type } } }';

/** Whether an event of the followed lease is the release the row sent. */
export const isRelease = (event: LeaseEvent | null | undefined) =>
  event?.leaseEvents.log.type.includes('release') ?? false;

/** Subscriptions the server serves from shared executions. */
export const cohortMembers = (graphqlUrl: string) => serverMetric(graphqlUrl, 'drydock_subscription_cohort_members');

/**
 * N graphql-ws connections, each following the same lease live (as a dashboard does: no replay);
 * one release; how long until each subscriber has the release's event. Latency is counted from
 * sending the release mutation (the commit is somewhere inside that request), on this process's
 * clock. The subscribers are in place once the server counts them all in its shared execution.
 */
export async function fanout(
  graphqlUrl: string,
  serverPid: number,
  resourceType: string,
  options: { subscribers: number; batch: number; timeoutMs: number; collectGarbage?: () => Promise<void> },
): Promise<FanoutResult> {
  const leaseId = await activeLease(graphqlUrl, resourceType);
  global.gc?.();
  await sleep(1_000);
  /** The server's resident memory after a full collection (when the caller can have one made). */
  const rss = async () => {
    await options.collectGarbage?.();
    return rssBytes(serverPid);
  };
  const rssBefore = await rss();

  const clients: Client[] = [];
  const stops: (() => void)[] = [];
  const received: number[] = [];
  let releaseSentAt = Number.POSITIVE_INFINITY;
  let failed = 0;
  const connectStart = now();
  let half: { connected: number; rss: number } | null = null;
  for (let i = 0; i < options.subscribers; i += options.batch) {
    if (!half && i >= options.subscribers / 2) {
      await sleep(2_000);
      half = { connected: await cohortMembers(graphqlUrl), rss: await rss() };
    }
    const batch = Math.min(options.batch, options.subscribers - i);
    const before = await cohortMembers(graphqlUrl);
    const failedBefore = failed;
    for (let n = 0; n < batch; n++) {
      const client = wsClient(graphqlUrl);
      clients.push(client);
      let got = false;
      stops.push(
        client.subscribe<LeaseEvent>(
          { query: followLease, variables: { id: leaseId } },
          {
            next: ({ data }) => {
              const at = now();
              if (!got && at > releaseSentAt && isRelease(data)) {
                got = true;
                received.push(at - releaseSentAt);
              }
            },
            error: () => failed++,
            complete: () => {},
          },
        ),
      );
    }
    // A batch at a time, so that connecting measures the server rather than a queue of handshakes.
    const batchDeadline = now() + 30_000;
    while ((await cohortMembers(graphqlUrl)) - before + failed - failedBefore < batch && now() < batchDeadline)
      await sleep(50);
  }
  const connected = await cohortMembers(graphqlUrl);
  const connectSeconds = (now() - connectStart) / 1_000;
  await sleep(2_000);
  const rssAfter = await rss();

  releaseSentAt = now();
  await releaseLease(graphqlUrl, leaseId);
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
    marginalBytesPerSubscriber: half ? (rssAfter - half.rss) / Math.max(1, connected - half.connected) : Number.NaN,
  };
}
