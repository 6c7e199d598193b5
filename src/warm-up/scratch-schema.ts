import { randomBytes } from 'node:crypto';
import type { Database } from '../db/database.js';

// The warm-up's tables live in a schema of their own, made for one start and dropped after it, so
// that nothing it writes is ever seen by the service: not a lease, not a log line, not an event.

type Query = (sql: string, params?: unknown[]) => Promise<unknown[]>;

/** Every scratch schema's name starts so (what to look for in pg_namespace). */
export const SCRATCH_SCHEMA_PREFIX = 'drydock_warm_up_';
/** The advisory lock namespace of scratch schemas ("DRWU"): held by the process using one. */
const SCRATCH_LOCKS = 0x44525755;
const lockArgs = (name: string) => [SCRATCH_LOCKS, name];
const LOCK_KEY = '$1::int, hashtext($2)';

/**
 * Runs `fn` with a new, empty schema that only this process uses, on one connection of `db` held
 * throughout (its session lock marks the schema as in use), and drops the schema afterwards,
 * whatever `fn` did. A process killed meanwhile leaves the schema behind with no lock on it: the
 * next process to warm up drops it (dropAbandoned).
 */
export async function withScratchSchema<T>(db: Database, fn: (schema: string) => Promise<T>): Promise<T> {
  return db.withConnection(async (query) => {
    await dropAbandoned(query);
    const schema = SCRATCH_SCHEMA_PREFIX + randomBytes(6).toString('hex');
    await query(`SELECT pg_advisory_lock(${LOCK_KEY})`, lockArgs(schema));
    try {
      await query(`CREATE SCHEMA "${schema}"`);
      try {
        return await fn(schema);
      } finally {
        await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    } finally {
      await query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, lockArgs(schema));
    }
  });
}

/** Drops the scratch schemas no live process holds. */
async function dropAbandoned(query: Query): Promise<void> {
  const rows = (await query(`SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)`, [
    SCRATCH_SCHEMA_PREFIX,
  ])) as { name: string }[];
  for (const { name } of rows) {
    const [lock] = (await query(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS taken`, lockArgs(name))) as {
      taken: boolean;
    }[];
    if (!lock?.taken) continue;
    try {
      await query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await query(`SELECT pg_advisory_unlock(${LOCK_KEY})`, lockArgs(name));
    }
  }
}
