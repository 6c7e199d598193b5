import net from 'node:net';
import { loadavg } from 'node:os';
import pg from 'pg';
import { serve } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/database.js';
import { applyMigrations } from '../src/db/migrate.js';
import { createLogger } from '../src/logger.js';
import { createHostPool, LeaseWatcher, releaseLease, requestLeases, wsClient } from './client.js';
import { createBenchDatabase } from './database.js';
import { cpuMs, postgresCpuMs, startBenchServer } from './servers.js';
import { sleep } from './stats.js';
import { numberArg } from './args.js';

// npm run build && npx tsx bench/cycle-cost.ts [--cycles=100] [--show=25] [--server [--clients=8 --seconds=10]]
//                                                 [--pool-size=10] [--worker-concurrency=4]
//
// The deterministic side of the benchmark: one lease at a time through the real transports
// (HTTP mutations, one graphql-ws leasesChanged subscription) on a 64-host pool. By default the
// server runs in this process and every statement it sends to PostgreSQL is counted at the pg
// driver, per phase of the cycle. With --server it runs in a process of its own, as
// `npm run bench` starts it, and its CPU time per phase is read from /proc instead. Wall-clock
// rows of `npm run bench` swing with the machine's load; these numbers hardly do.
//
// With --clients, `--clients` closed-loop clients run cycles for `--seconds` (the bench's cycle
// row) and the CPU time of the server, of this client process and of PostgreSQL's processes is
// reported per cycle: where a machine's cores go at full throughput.

const cycles = numberArg('cycles', 100);
const show = numberArg('show', 25);
const separate = process.argv.includes('--server');
const clients = numberArg('clients', 0);
const poolSize = numberArg('pool-size', 10);
const workerConcurrency = numberArg('worker-concurrency', 4);
const seconds = numberArg('seconds', 10);
// --trace: the statements of the last cycle, in the order they were sent, per phase.
const trace = process.argv.includes('--trace');

// 'load': everything sent while --clients run, counted per cycle.
type Phase = 'grant' | 'release' | 'load';
const phases = ['grant', 'release'] as const;
let phase: Phase | null = null;
const statements: Record<Phase, Map<string, number>> = { grant: new Map(), release: new Map(), load: new Map() };
const cpu: Record<Phase, number> = { grant: 0, release: 0, load: 0 };
// Writes to PostgreSQL's sockets: statements sent together (a transaction's BEGIN with its first
// statement) leave in one write, one round trip.
const writes: Record<Phase, number> = { grant: 0, release: 0, load: 0 };
const sequence: Record<Phase, string[]> = { grant: [], release: [], load: [] };

const db = await createBenchDatabase();
let graphqlUrl: string;
let close: () => Promise<unknown>;
let serverCpu = () => 0;
const realQuery = pg.Client.prototype.query;
if (separate) {
  const server = await startBenchServer({ databaseUrl: db.url, poolSize, workerConcurrency });
  graphqlUrl = server.graphqlUrl;
  serverCpu = () => cpuMs(server.pid);
  close = () => server.stop();
} else {
  const database = await openDatabase({ url: db.url, dataDir: '', poolSize });
  await applyMigrations(database);
  const app = await serve(
    database,
    { ...loadConfig({}), port: 0, rateLimitPerMinute: 1_000_000_000, workerConcurrency },
    createLogger('warn'),
  );
  graphqlUrl = app.graphqlUrl;
  close = async () => {
    await app.close();
    await database.close();
  };
  const dbPort = Number(new URL(db.url).port || 5432);
  for (const method of ['_write', '_writev'] as const) {
    const real = net.Socket.prototype[method] as (...a: unknown[]) => unknown;
    (net.Socket.prototype as unknown as Record<string, unknown>)[method] = function (
      this: net.Socket,
      ...a: unknown[]
    ) {
      if (phase && this.remotePort === dbPort) writes[phase]++;
      return real.apply(this, a);
    };
  }
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if (phase) {
      const first = args[0] as string | { text?: string };
      const text = typeof first === 'string' ? first : (first?.text ?? '?');
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 110);
      statements[phase].set(key, (statements[phase].get(key) ?? 0) + 1);
      sequence[phase].push(key.slice(0, 100));
    }
    return (realQuery as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof realQuery;
}

try {
  await createHostPool(graphqlUrl, 'cycle', 64);
  const client = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(client);
  await watcher.start(graphqlUrl, 'cycle');
  // Trailing work (job completion, the worker's next look) belongs to the phase that caused it.
  const settle = () => sleep(30);
  const timed = async (name: Phase, body: () => Promise<void>) => {
    phase = name;
    const before = serverCpu();
    await body();
    await settle();
    cpu[name] += serverCpu() - before;
    phase = null;
  };
  const cycle = async () => {
    let id = '';
    await timed('grant', async () => {
      [id] = (await requestLeases(graphqlUrl, { resourceType: 'cycle' })) as [string];
      await watcher.when(id, 'ACTIVE', 30_000);
    });
    await timed('release', async () => {
      await releaseLease(graphqlUrl, id);
      await watcher.when(id, 'DESTROYED', 30_000);
    });
    watcher.forget(id);
  };
  for (let i = 0; i < 20; i++) await cycle();
  if (clients > 0) {
    const database = new URL(db.url).pathname.slice(1);
    const before = { server: serverCpu(), client: process.cpuUsage(), postgres: postgresCpuMs(database) };
    const started = performance.now();
    const deadline = started + seconds * 1_000;
    let done = 0;
    phase = 'load';
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const [id] = (await requestLeases(graphqlUrl, { resourceType: 'cycle' })) as [string];
          await watcher.when(id, 'ACTIVE', 30_000);
          await releaseLease(graphqlUrl, id);
          await watcher.when(id, 'DESTROYED', 30_000);
          watcher.forget(id);
          done++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1_000;
    phase = null;
    const own = process.cpuUsage(before.client);
    const per = (ms: number) => `${(ms / done).toFixed(2)} ms`;
    process.stdout.write(
      `\n${clients} clients: ${(done / elapsed).toFixed(1)} cycles/s (${done} in ${elapsed.toFixed(1)} s); CPU per cycle: ` +
        `server ${per(serverCpu() - before.server)}, client ${per((own.user + own.system) / 1_000)}, ` +
        `PostgreSQL ${per(postgresCpuMs(database) - before.postgres)}; load ${loadavg()[0]!.toFixed(2)}\n`,
    );
    if (!separate) {
      const counted = [...statements.load.entries()].sort((a, b) => b[1] - a[1]);
      const sum = counted.reduce((a, [, n]) => a + n, 0);
      process.stdout.write(
        `statements per cycle: ${(sum / done).toFixed(2)} in ${(writes.load / done).toFixed(2)} writes\n` +
          counted
            .slice(0, show)
            .map(([text, n]) => `  ${(n / done).toFixed(2).padStart(6)}  ${text}`)
            .join('\n') +
          '\n',
      );
    }
    watcher.close();
    await client.dispose();
  }
  if (clients === 0) {
    for (const name of phases) {
      statements[name].clear();
      cpu[name] = 0;
      writes[name] = 0;
    }
    const started = performance.now();
    for (let i = 0; i < cycles; i++) {
      for (const name of phases) sequence[name] = [];
      await cycle();
    }
    const elapsed = performance.now() - started;
    watcher.close();
    await client.dispose();

    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const lines: string[] = [];
    if (separate) {
      for (const name of phases) lines.push(`${name}: server CPU ${(cpu[name] / cycles).toFixed(2)} ms per cycle`);
      lines.push(`cycle: server CPU ${((cpu.grant + cpu.release) / cycles).toFixed(2)} ms`);
    } else {
      for (const name of phases) {
        const m = statements[name];
        lines.push(
          `${name}: ${(total(m) / cycles).toFixed(2)} statements per cycle in ${(writes[name] / cycles).toFixed(2)} writes`,
        );
        for (const [text, n] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, show)) {
          lines.push(`  ${(n / cycles).toFixed(2).padStart(6)}  ${text}`);
        }
      }
      if (trace)
        for (const name of phases)
          lines.push(`${name}, the last cycle in order:`, ...sequence[name].map((t) => `    ${t}`));
      lines.push(
        `cycle: ${((total(statements.grant) + total(statements.release)) / cycles).toFixed(2)} statements in ` +
          `${((writes.grant + writes.release) / cycles).toFixed(2)} writes`,
      );
    }
    lines.push(
      `${cycles} cycles, ${(elapsed / cycles).toFixed(1)} ms wall per cycle (60 ms of it settling); load ${loadavg()[0]!.toFixed(2)}`,
    );
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
} finally {
  pg.Client.prototype.query = realQuery;
  await close();
  await db.drop();
}
