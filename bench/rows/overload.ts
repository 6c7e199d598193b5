import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gql } from '../client.js';
import type { LoadCommand, Outcome } from '../load-client.js';
import { percentile, sleep } from '../stats.js';

export interface OverloadResult {
  /**
   * Requests per second a server with load shedding lifted completes with closed-loop clients: its
   * measured capacity. Measured with shedding on, refused clients would retry at once and the
   * refusals' cost would pass for a lower capacity.
   */
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

/** The clients' process, kept for the row's phases, so its start-up is not in any of them. */
function loadProcess() {
  const child = fork(fileURLToPath(new URL('../load-client.ts', import.meta.url)), [], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`the load client exited with ${code}`))),
  );
  // Handled where a phase waits on it; this keeps an exit between phases from being unhandled.
  exited.catch(() => {});
  return {
    run(command: LoadCommand): Promise<Outcome[]> {
      const answered = new Promise<Outcome[]>((resolve) => child.once('message', (m) => resolve(m as Outcome[])));
      child.send(command);
      return Promise.race([answered, exited]);
    },
    stop: () => {
      child.removeAllListeners('exit');
      child.kill();
    },
  };
}

/**
 * Capacity first (closed-loop clients, each sending its next request when the last is answered,
 * against the server without shedding), and the unloaded latency of the shedding server,
 * then an open-loop offer of `factor` × that capacity: requests go out on schedule whether or not
 * earlier ones were answered, as independent clients would send them. The server must take what
 * it can at its usual latency and refuse the rest at once.
 */
export async function overload(
  graphqlUrl: string,
  /** The same service with load shedding lifted, for the capacity probe. */
  capacityUrl: string,
  options: {
    factor: number;
    seconds: number;
    probeSeconds: number;
    /** Closed-loop load on each server before anything is measured (see below). */
    warmSeconds: number;
    clients: number;
    connections: number;
  },
): Promise<OverloadResult> {
  await gql(graphqlUrl, QUERY);
  await gql(capacityUrl, QUERY);
  const load = loadProcess();
  const base = { url: graphqlUrl, query: QUERY, seconds: options.probeSeconds };
  try {
    // A new process runs this query at a fraction of its later rate until the JIT has compiled
    // its path: measured cold, the capacity would be a start-up figure, the offer no overload at
    // all, and the shedding server would shed for its own warm-up. Both serve the load first.
    for (const url of [capacityUrl, graphqlUrl])
      await load.run({ ...base, url, kind: 'closed', clients: options.clients, seconds: options.warmSeconds });
    const unloaded = (await load.run({ ...base, kind: 'closed', clients: 1 })).filter((o) => o.kind === 'admitted');
    const saturated = await load.run({ ...base, url: capacityUrl, kind: 'closed', clients: options.clients });
    const capacity = saturated.filter((o) => o.kind === 'admitted').length / options.probeSeconds;
    await sleep(1_000);
    const offered = capacity * options.factor;
    const outcomes = await load.run({
      ...base,
      kind: 'open',
      perSecond: offered,
      seconds: options.seconds,
      connections: options.connections,
    });
    return summary(capacity, unloaded, offered, options.seconds, outcomes);
  } finally {
    load.stop();
  }
}

function summary(
  capacity: number,
  unloaded: Outcome[],
  offered: number,
  seconds: number,
  outcomes: Outcome[],
): OverloadResult {
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
    seconds,
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
