import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Database } from '../db/database.js';
import type { NewerDatabaseWatch } from './newer-database.js';

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * /healthz: the process is up. /readyz: the database answers and has every committed migration
 * and none that this build does not have, so a load balancer sends no traffic to a process whose
 * database is gone or behind, nor to one of an older build still running after a newer build
 * migrated the database (its queries do not know that schema), until it has shut down.
 */
export function createHealthHandler(db: Database, isShuttingDown: () => boolean, migrations: NewerDatabaseWatch) {
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
      const { unknown, missing } = await migrations.check();
      if (unknown.length > 0) reply(res, 503, { status: 'database-newer', database: db.kind, unknown });
      else if (missing.length > 0) reply(res, 503, { status: 'migrations-pending', database: db.kind, missing });
      else reply(res, 200, { status: 'ready', database: db.kind });
    } catch (error) {
      reply(res, 503, { status: 'database-unreachable', database: db.kind, error: (error as Error).message });
    }
    return true;
  };
}
