import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database } from '../db/database.js';
import { appliedMigrations } from '../db/migrate.js';
import { readMigrationList } from '../db/migrations-folder.js';

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * /healthz: the process is up. /readyz: the database answers and has every committed migration,
 * so a load balancer sends no traffic to a process whose database is gone or behind.
 */
export function createHealthHandler(db: Database, isShuttingDown: () => boolean) {
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
      const applied = new Set(await appliedMigrations(db));
      const missing = (await expected).filter((name) => !applied.has(name));
      if (missing.length > 0) reply(res, 503, { status: 'migrations-pending', database: db.kind, missing });
      else reply(res, 200, { status: 'ready', database: db.kind });
    } catch (error) {
      reply(res, 503, { status: 'database-unreachable', database: db.kind, error: (error as Error).message });
    }
    return true;
  };
}
