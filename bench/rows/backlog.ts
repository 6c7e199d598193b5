import { createHostPool, requestLeases, untilActive } from '../client.js';

/** What the backlog row's grants ask for: the binding its pool has built. */
export const BACKLOG_GRANTED = { platform: 'now' };

/**
 * The backlog row's setup: a type whose queue holds `waiting` leases that nothing can serve. The
 * pool may build one resource only (resourceLimit 1), its first lease takes the "now" binding, and
 * the backlog asks for the other binding's platform. The row then times grants of "now" leases
 * (grant-latency.ts, with BACKLOG_GRANTED): a pass's cost must not grow with the backlog.
 */
export async function queueBacklog(graphqlUrl: string, resourceType: string, waiting: number): Promise<void> {
  await createHostPool(graphqlUrl, resourceType, 2, 1, (i) => ({ platform: i === 0 ? 'now' : 'later' }));
  const [first] = await requestLeases(graphqlUrl, { resourceType, attributes: BACKLOG_GRANTED });
  await untilActive(graphqlUrl, first!);
  for (let sent = 0; sent < waiting; sent += 100)
    await requestLeases(graphqlUrl, {
      resourceType,
      attributes: { platform: 'later' },
      count: Math.min(100, waiting - sent),
    });
}
