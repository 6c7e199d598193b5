import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import { NewerDatabaseError, recordedMigrations } from '../db/migrate.js';
import { readMigrationList } from '../db/migrations-folder.js';

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * /healthz: the process is up. /readyz: the database answers and has every committed migration
 * and none that this build does not have, so a load balancer sends no traffic to a process whose
 * database is gone or behind, nor to one of an older build still running after a newer build
 * migrated the database (its queries do not know that schema).
 */
export function createHealthHandler(db: Database, isShuttingDown: () => boolean, logger: Logger) {
  // Said once per set of unknown migrations, not on every probe of the load balancer.
  let reported = '';
  const expected = readMigrationList().then((list) => list.migrationDirectories.map((dir) => dir.path));
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      reply(res, 200, { status: 'ok' });
      return true;
    }
    if (path !== '/readyz') return false;
    if (isShuttingDown()) {
      reply(res, 503, { status: 'shutting-down' });
      return true;
    }
    try {
      const recorded = await recordedMigrations(db);
      const known = new Set(await expected);
      const applied = new Set(recorded.filter((row) => row.finished).map((row) => row.name));
      const unknown = recorded.filter((row) => !known.has(row.name)).map((row) => row.name);
      const missing = [...known].filter((name) => !applied.has(name));
      if (unknown.length > 0) {
        if (reported !== unknown.join()) {
          reported = unknown.join();
          logger.error(
            `not ready: ${new NewerDatabaseError(unknown).message}; this process started before they were applied: stop it`,
          );
        }
        reply(res, 503, { status: 'database-newer', database: db.kind, unknown });
      } else if (missing.length > 0) reply(res, 503, { status: 'migrations-pending', database: db.kind, missing });
      else reply(res, 200, { status: 'ready', database: db.kind });
    } catch (error) {
      reply(res, 503, { status: 'database-unreachable', database: db.kind, error: (error as Error).message });
    }
    return true;
  };
}
