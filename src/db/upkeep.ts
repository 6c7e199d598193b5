import type { Logger } from '../logger.js';
import type { Database } from './database.js';

/**
 * PostgreSQL's `autovacuum` setting; null for PGlite, which runs no background workers. With it
 * off, nothing gathers statistics of the lease and resource tables' columns (the planner guesses
 * how many rows each condition keeps, and on a large pool guesses wrong) nor clears their dead
 * row versions, which every index scan then steps over.
 */
export async function autovacuumSetting(db: Database): Promise<string | null> {
  if (db.kind !== 'postgresql') return null;
  const [row] = await db.prisma.$queryRaw<{ autovacuum: string }[]>`SHOW autovacuum`;
  return row?.autovacuum ?? null;
}

/** The start-up warning when autovacuum is off; `upkeep`: whether this process then does the upkeep itself (DATABASE_UPKEEP). */
export function autovacuumOffWarning(upkeep: boolean): string {
  return `PostgreSQL runs with autovacuum off: the statistics of the lease and resource tables go stale as they grow, and grants slow down on a large pool; ${
    upkeep
      ? 'this process vacuums and analyzes its own tables as autovacuum would (DATABASE_UPKEEP=false turns that off)'
      : 'DATABASE_UPKEEP=false: run VACUUM ANALYZE regularly'
  }, but turning autovacuum on is better (docs/operations.md)`;
}

/** How often a process looks at its tables' statistics for upkeep (one catalog query when nothing is due). */
export const UPKEEP_INTERVAL_MS = 15_000;

/**
 * autovacuum's default thresholds (autovacuum_vacuum_threshold and _scale_factor, and the analyze
 * pair): a table is vacuumed once its dead row versions pass 50 + 20 % of its rows, analyzed once
 * the rows changed since its last analyze pass 50 + 10 %. What a server with autovacuum on would
 * have done, no more.
 */
const VACUUM_BASE = 50;
const VACUUM_SCALE = 0.2;
const ANALYZE_BASE = 50;
const ANALYZE_SCALE = 0.1;

/** Any constant will do, as long as every process of this service uses the same one. */
const UPKEEP_LOCK_ID = 7_263_514_003;

export type UpkeepAction = { table: string; command: 'VACUUM' | 'ANALYZE'; changed: number; rows: number };

type TableStats = { name: string; dead: string; modified: string; rows: number };

/** What this schema's tables are due for, by the statistics PostgreSQL keeps whether or not autovacuum runs. */
function due(tables: TableStats[]): UpkeepAction[] {
  return tables.flatMap((t): UpkeepAction[] => {
    const rows = Math.max(0, t.rows);
    const dead = Number(t.dead);
    const modified = Number(t.modified);
    if (dead > VACUUM_BASE + VACUUM_SCALE * rows) return [{ table: t.name, command: 'VACUUM', changed: dead, rows }];
    if (modified > ANALYZE_BASE + ANALYZE_SCALE * rows)
      return [{ table: t.name, command: 'ANALYZE', changed: modified, rows }];
    return [];
  });
}

/**
 * One round of upkeep: vacuums (with analyze) or analyzes each of this schema's tables that is
 * due, and returns what it did. One process at a time (an advisory lock: another process's round
 * is skipped, not waited for), on one connection; SKIP_LOCKED leaves a table someone else is
 * vacuuming to them. Neither command blocks reads or writes of the table.
 */
export async function upkeepRound(db: Database): Promise<UpkeepAction[]> {
  if (db.kind !== 'postgresql') return [];
  return db.withConnection(async (query) => {
    const [lock] = (await query('SELECT pg_try_advisory_lock($1) AS locked', [UPKEEP_LOCK_ID])) as {
      locked: boolean;
    }[];
    if (!lock?.locked) return [];
    try {
      const tables = (await query(
        `SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS name,
                s.n_dead_tup::text AS dead, s.n_mod_since_analyze::text AS modified, c.reltuples::float8 AS rows
           FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
          WHERE s.schemaname = current_schema()
          ORDER BY s.relname`,
      )) as TableStats[];
      const actions = due(tables);
      for (const action of actions)
        await query(
          action.command === 'VACUUM'
            ? `VACUUM (ANALYZE, SKIP_LOCKED) ${action.table}`
            : `ANALYZE (SKIP_LOCKED) ${action.table}`,
        );
      return actions;
    } finally {
      await query('SELECT pg_advisory_unlock($1)', [UPKEEP_LOCK_ID]);
    }
  });
}

/**
 * Runs `upkeepRound` every `intervalMs` (the first after one interval), each after the last one
 * ended; what it does goes to the log. A failed round is logged and the next one runs as usual.
 * `stop` waits for a round in progress.
 */
export function startUpkeep(db: Database, logger: Logger, intervalMs: number): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const round = async () => {
    try {
      for (const a of await upkeepRound(db)) {
        const what = a.command === 'VACUUM' ? 'vacuumed and analyzed' : 'analyzed';
        const changes = a.command === 'VACUUM' ? 'dead row versions' : 'rows changed';
        logger.info(`upkeep: ${what} ${a.table} (${a.changed} ${changes}, about ${Math.round(a.rows)} rows before)`);
      }
    } catch (error) {
      logger.warn(`upkeep: a round failed: ${(error as Error).message}`);
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round().then(schedule);
    }, intervalMs).unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
