import pg from 'pg';
import { sleep } from './stats.js';

/**
 * Where the bench database's PostgreSQL backends were while a row ran, sampled from
 * pg_stat_activity: the average number of them in each state. CPU figures say how much PostgreSQL
 * worked per cycle; this says what the rest of a transaction's time was (a commit's flush to disk,
 * a row lock another transaction holds, the server process not yet sending the next statement),
 * which is what bounds a row on a machine its CPU does not fill. No extension is needed.
 */
export interface WaitProfile {
  /** Readings taken. */
  samples: number;
  /** Average number of backends in each state, largest first. */
  states: { state: string; backends: number }[];
}

/** pg_stat_activity's wait events, in the few states a reader of the table can act on. */
function stateOf(state: string, type: string | null, event: string | null): string {
  // Inside a transaction with nothing to run: the transaction waits for the server process.
  if (state === 'idle in transaction') return 'in a transaction, waiting for the server';
  if (type === null) return 'running (on CPU or ready to run)';
  if (type === 'Lock') return `waiting for a lock (${event})`;
  if (event === 'WALSync' || event === 'WALWrite' || event === 'WALInsert') return 'writing or flushing WAL';
  return `waiting (${type}: ${event})`;
}

/**
 * Reads until `stop`, each reading `intervalMs` after the last one's answer, from a connection of
 * its own (to `url`'s database; its own backend is left out). Each reading is one short query: at
 * the default interval a few percent of one core, on the sampling connection, not on the bench
 * database's backends.
 */
export async function sampleWaits(url: string, database: string, intervalMs = 10) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const counts = new Map<string, number>();
  let samples = 0;
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const { rows } = await client.query<{ state: string; type: string | null; event: string | null }>(
        `SELECT state, wait_event_type AS type, wait_event AS event FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
           AND state IN ('active', 'idle in transaction')`,
        [database],
      );
      samples++;
      for (const row of rows) {
        const state = stateOf(row.state, row.type, row.event);
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      await sleep(intervalMs);
    }
  })();
  // A reading that fails (the server restarting) ends the sampling; `stop` reports it, and until
  // then it must not count as an unhandled rejection, which would end the bench at once.
  loop.catch(() => {});
  const stopped = async (): Promise<WaitProfile> => {
    stopping = true;
    try {
      await loop;
    } finally {
      await client.end();
    }
    const states = [...counts.entries()]
      .map(([state, n]) => ({ state, backends: n / Math.max(1, samples) }))
      .sort((a, b) => b.backends - a.backends);
    return { samples, states };
  };
  let profile: Promise<WaitProfile> | undefined;
  // Once, however often it is called: a row stops it when it ends, pass or fail.
  return { stop: () => (profile ??= stopped()) };
}
