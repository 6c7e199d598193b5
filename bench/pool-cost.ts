import pg from 'pg';
import { serve } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrate.js';
import { createLogger } from '../src/logger.js';
import { createHostPool, LeaseWatcher, requestLeases, wsClient } from './client.js';
import { createBenchDatabase } from './database.js';
import { sleep } from './stats.js';
import { numberArg } from './args.js';

// npx tsx bench/pool-cost.ts [--hosts=10000] [--grants=200] [--show=15] [--waiting=0] [--burst=1 | --rate=N]
//
// Where a grant's time goes on a filled pool: a host pool of --hosts bindings is filled (one
// lease per host), then --grants leases are granted one at a time (or as --burst and --rate
// below say), and every statement the server sends meanwhile is timed at the pg driver (round
// trip included) and summed by text.
// Run it at two sizes to see which statement grows with the pool. --waiting=N first queues N
// leases nothing can serve, as the backlog row does (the pool has one more binding, of another
// platform, than it may build), to see what they cost each pass.

const hosts = numberArg('hosts', 10_000);
const grants = numberArg('grants', 200);
const show = numberArg('show', 15);
const waiting = numberArg('waiting', 0);
// --burst=N: the grants are requested N at a time (one request of N leases), so that one pass
// serves several, as passes do under load.
const burst = numberArg('burst', 1);
// --rate=N: the grants are requested N a second on schedule (as the bench's grant rows do),
// without waiting for the ones before; 0 (the default): one burst after another.
const rate = numberArg('rate', 0);
// --keep: the database is left for EXPLAIN (its URL is printed).
const keep = process.argv.includes('--keep');

const timing = new Map<string, { n: number; ms: number }>();
let timed = false;
const realQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const result = (realQuery as (...a: unknown[]) => unknown).apply(this, args);
  if (!timed || !(result instanceof Promise)) return result;
  const first = args[0] as string | { text?: string };
  const key = (typeof first === 'string' ? first : (first?.text ?? '?')).replace(/\s+/g, ' ').trim().slice(0, 100);
  const started = performance.now();
  return result.finally(() => {
    const entry = timing.get(key) ?? { n: 0, ms: 0 };
    entry.n++;
    entry.ms += performance.now() - started;
    timing.set(key, entry);
  });
} as typeof realQuery;

const db = await createBenchDatabase();
// --explain-ms=N: PostgreSQL logs the plan of every statement slower than N ms (auto_explain, to
// the server's log), for the whole run: set before the server's connections open.
const explainMs = numberArg('explain-ms', 0);
if (explainMs > 0) {
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const name = new URL(db.url).pathname.slice(1);
  for (const setting of [
    `session_preload_libraries = 'auto_explain'`,
    `auto_explain.log_min_duration = ${explainMs}`,
    'auto_explain.log_analyze = on',
    'auto_explain.log_buffers = on',
    'auto_explain.log_nested_statements = on',
  ])
    await admin.query(`ALTER DATABASE "${name}" SET ${setting}`);
  await admin.end();
}
const database = await openDatabase({ url: db.url, dataDir: '', poolSize: 10 });
await applyMigrations(database);
const app = await serve(
  database,
  { ...loadConfig({}), port: 0, rateLimitPerMinute: 1_000_000_000, maxBodyBytes: 16 * 2 ** 20 },
  createLogger('warn'),
);
try {
  const url = app.graphqlUrl;
  const platform = (binding: number) => ({ platform: binding < hosts ? 'now' : 'later' });
  const wanted = waiting > 0 ? { attributes: { platform: 'now' } } : {};
  if (waiting > 0) await createHostPool(url, 'pool', hosts + 1, hosts, platform);
  else await createHostPool(url, 'pool', hosts);
  const client = wsClient(url);
  const watcher = new LeaseWatcher(client);
  await watcher.start(url, 'pool');
  const filling = performance.now();
  const ids: string[] = [];
  for (let left = hosts; left > 0; left -= 100) {
    ids.push(...(await requestLeases(url, { resourceType: 'pool', count: Math.min(100, left), ...wanted })));
    while (ids.filter((id) => !watcher.has(id, 'ACTIVE')).length >= 200) await sleep(50);
  }
  while (ids.some((id) => !watcher.has(id, 'ACTIVE'))) await sleep(100);
  process.stdout.write(`${hosts} hosts filled in ${((performance.now() - filling) / 1_000).toFixed(1)} s\n`);
  for (let left = waiting; left > 0; left -= 100)
    await requestLeases(url, { resourceType: 'pool', count: Math.min(100, left), attributes: { platform: 'later' } });
  // --vacuum / --analyze: what autovacuum would have done after the fill, on a server that runs it.
  const maintenance = process.argv.includes('--vacuum')
    ? 'VACUUM ANALYZE'
    : process.argv.includes('--analyze')
      ? 'ANALYZE'
      : null;
  if (maintenance) {
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(maintenance);
    await admin.end();
  }
  timed = true;
  const started = performance.now();
  if (rate > 0) {
    const requests: Promise<void>[] = [];
    for (let i = 0; i < grants; i++) {
      const due = started + (i * 1_000) / rate;
      if (due > performance.now()) await sleep(due - performance.now());
      requests.push(
        requestLeases(url, { resourceType: 'pool', ...wanted }).then(async ([id]) => {
          await watcher.when(id!, 'ACTIVE', 30_000);
        }),
      );
    }
    await Promise.all(requests);
  } else
    for (let i = 0; i < grants; i += burst) {
      const ids = await requestLeases(url, { resourceType: 'pool', count: Math.min(burst, grants - i), ...wanted });
      for (const id of ids) await watcher.when(id, 'ACTIVE', 30_000);
    }
  const perGrant = (performance.now() - started) / grants;
  timed = false;
  watcher.close();
  await client.dispose();
  const rows = [...timing.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, show);
  process.stdout.write(
    `${grants} grants ${rate > 0 ? `at ${rate}/s` : `${burst} at a time`}, ${perGrant.toFixed(1)} ms wall each; per grant:\n`,
  );
  for (const [text, { n, ms }] of rows)
    process.stdout.write(
      `  ${(ms / grants).toFixed(2).padStart(7)} ms ${(n / grants).toFixed(2).padStart(5)}×  ${text}\n`,
    );
} finally {
  pg.Client.prototype.query = realQuery;
  await app.close();
  await database.close();
  if (keep) process.stdout.write(`kept: ${db.url}\n`);
  else await db.drop();
}
