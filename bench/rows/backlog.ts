import { createHostPool, requestLeases, untilActive } from '../client.js';
import { grantLatency, type GrantResult } from './grant-latency.js';

/**
 * Grant latency on a type whose queue already holds `waiting` leases that nothing can serve: the
 * pool may build one resource only (resourceLimit 1), its first lease takes the "now" binding, and
 * the backlog asks for the other binding's platform. A pass's cost must not grow with them.
 */
export async function backlogGrantLatency(
  graphqlUrl: string,
  resourceType: string,
  options: { waiting: number; rate: number; seconds: number },
): Promise<GrantResult & { waiting: number }> {
  await createHostPool(graphqlUrl, resourceType, 2, 1, (i) => ({ platform: i === 0 ? 'now' : 'later' }));
  const [first] = await requestLeases(graphqlUrl, { resourceType, attributes: { platform: 'now' } });
  await untilActive(graphqlUrl, first!);
  for (let sent = 0; sent < options.waiting; sent += 100)
    await requestLeases(graphqlUrl, {
      resourceType,
      attributes: { platform: 'later' },
      count: Math.min(100, options.waiting - sent),
    });
  const result = await grantLatency(graphqlUrl, resourceType, {
    rate: options.rate,
    seconds: options.seconds,
    attributes: { platform: 'now' },
  });
  return { ...result, waiting: options.waiting };
}
