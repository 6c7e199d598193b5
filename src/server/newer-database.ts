import type { Database } from '../db/database.js';
import { NewerDatabaseError, recordedMigrations } from '../db/migrate.js';
import { readMigrationList } from '../db/migrations-folder.js';
import type { Logger } from '../logger.js';

export interface MigrationState {
  /** Recorded in the database (finished or not, not rolled back) but not in this build. */
  unknown: string[];
  /** In this build but not recorded as finished. */
  missing: string[];
}

/**
 * Notices that a newer build migrated the database this process runs on. At start such a database
 * is refused (NewerDatabaseError); a process started before the migration must stop too, as its
 * queries and its job worker do not know that schema. Looked for every `intervalMs` and on every
 * /readyz probe; the first finding is logged once and resolves `found`, which the process's entry
 * point answers by shutting down. Only PostgreSQL can be migrated by another process meanwhile,
 * but the look is one small query, so it runs the same on both databases.
 */
export class NewerDatabaseWatch {
  readonly found: Promise<string[]>;
  private resolveFound!: (unknown: string[]) => void;
  private reported = false;
  private readonly expected: Promise<Set<string>>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    intervalMs: number,
  ) {
    this.found = new Promise((resolve) => (this.resolveFound = resolve));
    this.expected = readMigrationList().then((list) => new Set(list.migrationDirectories.map((dir) => dir.path)));
    // A failed look (the database restarting) is /readyz's to report; the next one tries again.
    this.timer = setInterval(() => void this.check().catch(() => {}), intervalMs);
    this.timer.unref();
  }

  /** What the database records against this build's migrations; rejects when it does not answer. */
  async check(): Promise<MigrationState> {
    const recorded = await recordedMigrations(this.db);
    const known = await this.expected;
    const applied = new Set(recorded.filter((row) => row.finished).map((row) => row.name));
    const unknown = recorded.filter((row) => !known.has(row.name)).map((row) => row.name);
    const missing = [...known].filter((name) => !applied.has(name));
    if (unknown.length > 0 && !this.reported) {
      this.reported = true;
      clearInterval(this.timer);
      this.logger.error(
        `${new NewerDatabaseError(unknown).message}; this process started before they were applied: shutting down`,
      );
      this.resolveFound(unknown);
    }
    return { unknown, missing };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
