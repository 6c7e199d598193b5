import { randomBytes } from 'node:crypto';
import pg from 'pg';

const adminUrl = 'postgresql://postgres@127.0.0.1:5432/test';

export interface BenchDatabase {
  url: string;
  serverVersion: string;
  drop(): Promise<void>;
}

/** A fresh database per run, so that nothing another run or test left behind skews the numbers. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const given = process.env['BENCH_DATABASE_URL'];
  const admin = new pg.Client({ connectionString: given ?? adminUrl });
  await admin.connect();
  const serverVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  if (given) {
    await admin.end();
    return { url: given, serverVersion, drop: async () => {} };
  }
  const name = `drydock_bench_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    serverVersion,
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
