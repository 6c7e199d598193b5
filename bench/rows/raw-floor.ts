import pg from 'pg';
import { now } from '../stats.js';

export interface RawFloorResult {
  transactions: number;
  seconds: number;
  perSecond: number;
}

/**
 * The ceiling the database itself puts on a lease cycle: the cheapest transaction any grant must
 * make (take a slot lock, give it back), through plain pg with the server's pool size.
 */
export async function rawFloor(databaseUrl: string, connections: number, seconds: number): Promise<RawFloorResult> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: connections });
  let transactions = 0;
  const deadline = now() + seconds * 1_000;
  const start = now();
  try {
    await Promise.all(
      Array.from({ length: connections }, async (_, worker) => {
        const client = await pool.connect();
        try {
          for (let i = 0; now() < deadline && i < 10_000_000; i++) {
            const key = `bench.raw(${worker}/${i})`;
            await client.query('BEGIN');
            await client.query('INSERT INTO "SlotLock" (key) VALUES ($1)', [key]);
            await client.query('DELETE FROM "SlotLock" WHERE key = $1', [key]);
            await client.query('COMMIT');
            transactions++;
          }
        } finally {
          client.release();
        }
      }),
    );
  } finally {
    await pool.end();
  }
  const elapsed = (now() - start) / 1_000;
  return { transactions, seconds: elapsed, perSecond: transactions / elapsed };
}
