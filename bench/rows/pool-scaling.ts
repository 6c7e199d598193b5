import { LeaseWatcher, createHostPool, releaseLease, requestLeases, wsClient } from '../client.js';
import { now, sleep } from '../stats.js';
import { grantLatency, type GrantResult } from './grant-latency.js';

export interface PoolGrants extends GrantResult {
  /** CPU (server process and its PostgreSQL backends) per timed grant, in ms; undefined: not measured. */
  cpuMsPerGrant?: number;
}

export interface PoolScalingResult extends PoolGrants {
  hosts: number;
  resources: number;
  fillSeconds: number;
  /** The same grants timed again after `maintain` (VACUUM ANALYZE), and how long it took. */
  maintained?: PoolGrants & { maintenanceSeconds: number };
}

/**
 * A host pool of `hosts` bindings is filled until every binding is a resource (one lease each,
 * requested 100 at a time) or until the fill deadline, then grants are timed on it as in the
 * grant-latency row. `cpuMs` (the CPU used so far by the server and the database) gives the
 * timed grants' cost: what the issue bounds is per-grant cost, which latency at a fixed rate only
 * shows once a machine is near saturation.
 */
export async function poolScaling(
  graphqlUrl: string,
  hosts: number,
  options: {
    rate: number;
    seconds: number;
    fillTimeoutSeconds: number;
    cpuMs?: () => number;
  },
): Promise<PoolScalingResult> {
  const resourceType = `pool${hosts}`;
  await createHostPool(graphqlUrl, resourceType, hosts);
  const client = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(graphqlUrl, resourceType);
  const fillStart = now();
  const deadline = fillStart + options.fillTimeoutSeconds * 1_000;
  const ids: string[] = [];
  for (let left = hosts; left > 0 && now() < deadline; left -= 100) {
    ids.push(...(await requestLeases(graphqlUrl, { resourceType, count: Math.min(100, left) })));
    // Stay a little ahead of the allocator instead of queueing thousands of leases at once.
    while (ids.length > 0 && now() < deadline) {
      const pendingAhead = ids.filter((id) => !watcher.has(id, 'ACTIVE')).length;
      if (pendingAhead < 200) break;
      await sleep(50);
    }
  }
  while (now() < deadline && ids.some((id) => !watcher.has(id, 'ACTIVE'))) await sleep(100);
  // Leases still queued at the deadline would sit ahead of the timed ones (the queue is FIFO per
  // resource type): withdraw them and time grants on the resources that exist.
  const unfilled = ids.filter((id) => !watcher.has(id, 'ACTIVE'));
  await Promise.all(unfilled.map((id) => releaseLease(graphqlUrl, id).catch(() => {})));
  const resources = ids.length - unfilled.length;
  if (unfilled.length > 0) await sleep(2_000);
  const fillSeconds = (now() - fillStart) / 1_000;
  watcher.close();
  await client.dispose();
  const asFilled = await timedGrants(graphqlUrl, resourceType, options);
  return { ...asFilled, hosts, resources, fillSeconds };
}

/**
 * What autovacuum does to tables that grew and changed this much (VACUUM ANALYZE), then every
 * pool's grants timed again. Run once after every pool was filled and timed, so that no pool's
 * first timing profits from statistics an earlier pool's maintenance gathered: a PostgreSQL that
 * runs no autovacuum keeps every dead row version the fills left, and has no statistics of the
 * grown tables' columns to plan by.
 */
export async function maintainedPools(
  graphqlUrl: string,
  pools: PoolScalingResult[],
  maintain: () => Promise<void>,
  options: { rate: number; seconds: number; cpuMs?: () => number },
): Promise<PoolScalingResult[]> {
  const started = now();
  await maintain();
  const maintenanceSeconds = (now() - started) / 1_000;
  const again: PoolScalingResult[] = [];
  for (const pool of pools) {
    const maintained = { ...(await timedGrants(graphqlUrl, `pool${pool.hosts}`, options)), maintenanceSeconds };
    again.push({ ...pool, maintained });
  }
  return again;
}

async function timedGrants(
  graphqlUrl: string,
  resourceType: string,
  options: { rate: number; seconds: number; cpuMs?: () => number },
): Promise<PoolGrants> {
  const cpuBefore = options.cpuMs?.();
  const grants = await grantLatency(graphqlUrl, resourceType, options);
  const cpuMsPerGrant =
    cpuBefore === undefined ? undefined : (options.cpuMs!() - cpuBefore) / Math.max(1, grants.granted);
  return { ...grants, ...(cpuMsPerGrant === undefined ? {} : { cpuMsPerGrant }) };
}
