import { randomBytes } from 'node:crypto';
import pg from 'pg';

const adminUrl = 'postgresql://postgres@127.0.0.1:5432/test';

export interface BenchDatabase {
  url: string;
  /**
   * Another database of the same server (the one the bench's is created from), for readings that
   * must not count as the bench database's work; the bench's own when BENCH_DATABASE_URL names it.
   */
  adminUrl: string;
  serverVersion: string;
  /** The server's `autovacuum` setting (on, off). */
  autovacuum: string;
  drop(): Promise<void>;
}

/** A fresh database per run, so that nothing another run or test left behind skews the numbers. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const given = process.env['BENCH_DATABASE_URL'];
  const admin = new pg.Client({ connectionString: given ?? adminUrl });
  await admin.connect();
  const serverVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  const autovacuum = (await admin.query<{ autovacuum: string }>('SHOW autovacuum')).rows[0]!.autovacuum;
  if (given) {
    await admin.end();
    return { url: given, adminUrl: given, serverVersion, autovacuum, drop: async () => {} };
  }
  const name = `drydock_bench_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    adminUrl,
    serverVersion,
    autovacuum,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * VACUUM ANALYZE of a bench database: what autovacuum would have done by now on a server that
 * runs it (`autovacuum = off` is a server setting, and `npm run bench` prints it), so that a row
 * can be measured both ways.
 */
export async function vacuumAnalyze(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM ANALYZE');
  } finally {
    await client.end();
  }
}
