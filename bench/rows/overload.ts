import { gql } from '../client.js';
import { now, percentile, sleep } from '../stats.js';

export interface OverloadResult {
  /** Requests per second the server completes with closed-loop clients: its measured capacity. */
  capacity: number;
  /** One client at a time: the latency admitted requests should keep. */
  unloadedP99: number;
  offeredPerSecond: number;
  seconds: number;
  sent: number;
  admitted: number;
  admittedP99: number;
  refused: number;
  refusedP99: number;
  /** Refusals by HTTP status (503 process, 429 principal). */
  refusedBy: Record<string, number>;
  /** Answered, neither refused nor with the data: what the server took on and then failed. */
  lost: number;
  /** No HTTP answer within 30 s (or the connection failed): whether the server took these on is unknown. */
  unanswered: number;
}

const QUERY = 'query { leases(first: 20) { edges { node { id status resourceType } } } }';

type Outcome = { ms: number; kind: 'admitted' | 'refused' | 'lost' | 'unanswered'; status: number };

async function one(graphqlUrl: string): Promise<Outcome> {
  const start = now();
  try {
    const response = await fetch(graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.json()) as { data?: unknown; errors?: unknown };
    const ms = now() - start;
    if (response.status === 503 || response.status === 429) return { ms, kind: 'refused', status: response.status };
    return { ms, kind: response.ok && body.data && !body.errors ? 'admitted' : 'lost', status: response.status };
  } catch {
    return { ms: now() - start, kind: 'unanswered', status: 0 };
  }
}

async function closedLoop(graphqlUrl: string, clients: number, seconds: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const until = now() + seconds * 1_000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (now() < until) outcomes.push(await one(graphqlUrl));
    }),
  );
  return outcomes;
}

/**
 * Capacity first (closed-loop clients, each sending its next request when the last is answered),
 * then an open-loop offer of `factor` × that capacity: requests go out on schedule whether or not
 * earlier ones were answered, as independent clients would send them. The server must take what
 * it can at its usual latency and refuse the rest at once.
 */
export async function overload(
  graphqlUrl: string,
  options: { factor: number; seconds: number; probeSeconds: number; clients: number },
): Promise<OverloadResult> {
  await gql(graphqlUrl, QUERY);
  const unloaded = (await closedLoop(graphqlUrl, 1, options.probeSeconds)).filter((o) => o.kind === 'admitted');
  const saturated = await closedLoop(graphqlUrl, options.clients, options.probeSeconds);
  const capacity = saturated.filter((o) => o.kind === 'admitted').length / options.probeSeconds;
  await sleep(1_000);

  const offered = capacity * options.factor;
  const pending: Promise<Outcome>[] = [];
  const start = now();
  const end = start + options.seconds * 1_000;
  while (now() < end) {
    const due = Math.floor(((now() - start) / 1_000) * offered);
    while (pending.length < due) pending.push(one(graphqlUrl));
    await sleep(2);
  }
  const outcomes = await Promise.all(pending);
  const of = (kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind);
  const refusedBy: Record<string, number> = {};
  for (const o of of('refused')) refusedBy[o.status] = (refusedBy[o.status] ?? 0) + 1;
  return {
    capacity,
    unloadedP99: percentile(
      unloaded.map((o) => o.ms),
      99,
    ),
    offeredPerSecond: offered,
    seconds: options.seconds,
    sent: outcomes.length,
    admitted: of('admitted').length,
    admittedP99: percentile(
      of('admitted').map((o) => o.ms),
      99,
    ),
    refused: of('refused').length,
    refusedP99: percentile(
      of('refused').map((o) => o.ms),
      99,
    ),
    refusedBy,
    lost: of('lost').length,
    unanswered: of('unanswered').length,
  };
}
