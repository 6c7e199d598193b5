import { createHostPool, gql, requestLeases, untilActive } from '../client.js';

/** What the backlog row's grants ask for: the bindings its pool has built. */
export const BACKLOG_GRANTED = { platform: 'now' };

/**
 * The backlog row's setup: a type whose queue holds `waiting` leases that nothing can serve, on a
 * pool shaped as the free pool's row (`hosts` hosts, every one built before the row is timed), so
 * that the two rows differ by the backlog alone. The pool has one binding more, of the platform
 * the backlog asks for, than it may build (resourceLimit `hosts`); the "now" leases requested
 * first build every host it may, so the backlog's leases wait for room that never comes. The row
 * then times grants of "now" leases (grant-latency.ts, with BACKLOG_GRANTED): a pass's cost must
 * not grow with the backlog.
 *
 * The pool once had one host: every grant then landed on that one resource's row, which cost
 * PostgreSQL more per grant with nothing waiting as well, and the row read that as the backlog's.
 */
export async function queueBacklog(
  graphqlUrl: string,
  resourceType: string,
  waiting: number,
  hosts: number,
): Promise<void> {
  await createHostPool(graphqlUrl, resourceType, hosts + 1, hosts, (i) => ({
    platform: i < hosts ? 'now' : 'later',
  }));
  const builders = await requestLeases(graphqlUrl, { resourceType, attributes: BACKLOG_GRANTED, count: hosts });
  for (const id of builders) await untilActive(graphqlUrl, id);
  const built = await liveResources(graphqlUrl, resourceType, hosts);
  if (built !== hosts) throw new Error(`the backlog row's pool built ${built} hosts, not ${hosts}`);
  for (let sent = 0; sent < waiting; sent += 100)
    await requestLeases(graphqlUrl, {
      resourceType,
      attributes: { platform: 'later' },
      count: Math.min(100, waiting - sent),
    });
}

async function liveResources(graphqlUrl: string, resourceType: string, expected: number): Promise<number> {
  const data = await gql<{ resources: { edges: unknown[] } }>(
    graphqlUrl,
    'query ($type: String!, $n: Int!) { resources(first: $n, filter: { type: $type, status: [ACTIVE, PENDING] }) { edges { cursor } } }',
    // One more than the pool may build, so that one built too many shows.
    { type: resourceType, n: Math.min(expected + 1, 100) },
  );
  return data.resources.edges.length;
}
