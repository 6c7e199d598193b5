import { cpus, loadavg } from 'node:os';
import { createHostPool, passesBetween, passReading } from './client.js';
import { createBenchDatabase, vacuumAnalyze } from './database.js';
import { sampleWaits } from './postgres-waits.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backlogRows,
  cycleRows,
  fanoutRows,
  floorRow,
  grantRows,
  handoffRows,
  idleRows,
  mixedOrderRows,
  overloadRows,
  poolRows,
  spreadRows,
  waitRows,
  type RunCost,
} from './report.js';
import { BACKLOG_GRANTED, queueBacklog } from './rows/backlog.js';
import { mixedOrder } from './rows/mixed-order.js';
import { rawFloor } from './rows/raw-floor.js';
import { cliHelpTimes, startUpRows } from './rows/start-up.js';
import { grantLatency } from './rows/grant-latency.js';
import { leaseCycles } from './rows/cycles.js';
import { handoff } from './rows/handoff.js';
import { fanout } from './rows/fanout.js';
import { overload } from './rows/overload.js';
import { maintainedPools, poolScaling } from './rows/pool-scaling.js';
import { spread } from './rows/spread.js';
import { busyShare, cpuMs, machineTicks, postgresCpuMs, startBenchServer, type BenchServer } from './servers.js';
import { benchSettings } from './settings.js';
import { markdownTable, type Row } from './table.js';
import { checkFileLimit } from './ulimit.js';

// npm run bench [-- --quick] [--rate=200 --subscribers=5000 ...] [--rows=fanout,idle,overload]:
// see settings.ts for every knob; ROW_NAMES for the rows.
const settings = benchSettings(process.argv.slice(2));
const ROW_NAMES = [
  'floor',
  'grants',
  'backlog',
  'cycles',
  'mixed',
  'handoff',
  'fanout',
  'idle',
  'spread',
  'overload',
  'pools',
];
const unknownRows = [...(settings.rows ?? [])].filter((name) => !ROW_NAMES.includes(name));
if (unknownRows.length > 0)
  throw new Error(`unknown --rows: ${unknownRows.join(', ')} (rows: ${ROW_NAMES.join(', ')})`);
const want = (name: string) => settings.rows?.has(name) ?? true;
/** Ends a run early (the PGlite run has no two-process or later rows). */
class Done extends Error {}
const log = (text: string) => process.stderr.write(`[bench] ${text}\n`);
const started = Date.now();
// The spread row's subscribers are split over two server processes and two client processes.
const fileLimit = checkFileLimit(
  Math.max(
    settings.subscribers,
    want('idle') ? settings.idleSubscribers : 0,
    want('spread') ? Math.ceil(settings.spreadSubscribers / 2) : 0,
  ) + 1_000,
);
log(`open-file limit: ${fileLimit}`);

// --pglite: the embedded database every new user runs first, in a directory of its own.
const pgliteDir = settings.pglite ? mkdtempSync(join(tmpdir(), 'drydock-bench-')) : null;
const db = pgliteDir
  ? {
      url: '',
      adminUrl: '',
      serverVersion: 'PGlite (embedded)',
      autovacuum: 'n/a',
      drop: () => Promise.resolve(rmSync(pgliteDir, { recursive: true, force: true })),
    }
  : await createBenchDatabase();
/** The PostgreSQL database's name, whose backends the rows read (none on PGlite). */
const databaseName = pgliteDir ? null : new URL(db.url).pathname.slice(1);
const servers: BenchServer[] = [];
/** The grant rows' pools: the free pool's, and the backlog row's as many. */
const GRANT_POOL_HOSTS = 64;
const rows: Row[] = [];
// Each row as soon as it is measured, so that an interrupted run still shows what it got.
const push = (...added: Row[]) => {
  rows.push(...added);
  for (const r of added) log(`  ${r.row}: ${r.result}`);
};
let stopping = false;
const stopOnSignal = (signal: NodeJS.Signals) => {
  if (stopping) process.exit(1);
  stopping = true;
  log(`${signal}: stopping the servers and dropping the database`);
  void Promise.allSettled(servers.map((s) => s.stop()))
    .then(() => db.drop())
    .finally(() => process.exit(130));
};
process.once('SIGINT', stopOnSignal);
process.once('SIGTERM', stopOnSignal);
const load: string[] = [`start ${loadavg()[0]!.toFixed(2)}`];
try {
  const serverSettings = {
    ...(pgliteDir ? { dataDir: pgliteDir } : { databaseUrl: db.url }),
    poolSize: settings.poolSize,
    workerConcurrency: settings.workerConcurrency,
  };
  const helpMs = want('cycles') ? (log('drydock --help'), cliHelpTimes(settings.quick ? 3 : 10)) : [];
  servers.push(await startBenchServer(serverSettings));
  const [first] = servers as [BenchServer];
  log(`server 1: pid ${first.pid} at ${first.url}`);

  // PGlite has no raw floor to measure through pg: its cycle row reports the share of PostgreSQL's.
  const floor =
    pgliteDir || !(want('floor') || want('cycles'))
      ? null
      : await rawFloor(db.url, settings.poolSize, settings.rawSeconds);
  if (floor) push(floorRow(floor));

  /** From now until `per` is called: the servers' and PostgreSQL's CPU per unit of work, and how busy the machine was. */
  const runCostReading = (measured: readonly BenchServer[]) => {
    const serversCpu = () => measured.reduce((sum, server) => sum + cpuMs(server.pid), 0);
    const [cpu, postgres, ticks] = [serversCpu(), databaseName ? postgresCpuMs(databaseName) : 0, machineTicks()];
    return {
      per: (units: number): RunCost => ({
        serverCpuMs: (serversCpu() - cpu) / Math.max(1, units),
        ...(databaseName ? { postgresCpuMs: (postgresCpuMs(databaseName) - postgres) / Math.max(1, units) } : {}),
        machineBusy: busyShare(ticks, machineTicks()),
      }),
    };
  };

  if (want('grants') || want('backlog')) {
    log('grant latency');
    await createHostPool(first.graphqlUrl, 'grant', GRANT_POOL_HOSTS);
    const before = runCostReading([first]);
    const passesBefore = await passReading(first.graphqlUrl, 'grant');
    let sinceWarm: ReturnType<typeof runCostReading> | undefined;
    const grants = await grantLatency(first.graphqlUrl, 'grant', {
      rate: settings.grantRate,
      seconds: settings.grantSeconds,
      onWarm: () => (sinceWarm = runCostReading([first])),
    });
    const passes = passesBetween(passesBefore, await passReading(first.graphqlUrl, 'grant'));
    const warmCost = sinceWarm?.per(grants.seenSinceWarm);
    if (want('grants')) push(...grantRows(grants, before.per(grants.granted), passes, warmCost));
    load.push(`after grants ${loadavg()[0]!.toFixed(2)}`);

    if (want('backlog')) {
      // The backlog row's pool is timed twice, as two types built alike: with nothing waiting, then
      // with the backlog. What the backlog adds is the difference; the free pool's row differs in
      // its shape as well (no spare binding, no limit).
      const timedPool = async (resourceType: string, waiting: number) => {
        await queueBacklog(first.graphqlUrl, resourceType, waiting, GRANT_POOL_HOSTS);
        // Read around the timed grants only, as for the free pool's row: not the backlog's queueing.
        const before = runCostReading([first]);
        const passesBefore = await passReading(first.graphqlUrl, resourceType);
        const result = await grantLatency(first.graphqlUrl, resourceType, {
          rate: settings.grantRate,
          seconds: settings.grantSeconds,
          attributes: BACKLOG_GRANTED,
        });
        const passes = passesBetween(passesBefore, await passReading(first.graphqlUrl, resourceType));
        return { result, cost: before.per(result.granted), passes };
      };
      log("grant latency on the backlog row's pool, nothing waiting");
      const none = await timedPool('backlog-none', 0);
      log(`grant latency with ${settings.backlog} leases waiting`);
      const backlog = await timedPool('backlog', settings.backlog);
      push(
        ...backlogRows(
          { ...backlog.result, waiting: settings.backlog },
          grants,
          none.result,
          backlog.cost,
          backlog.passes,
        ),
      );
      load.push(`after backlog ${loadavg()[0]!.toFixed(2)}`);
    }
  }

  if (want('cycles')) {
    log('cycles, one server');
    await createHostPool(first.graphqlUrl, 'cycle', 64);
    const cycleOptions = {
      clients: settings.cycleClients,
      seconds: settings.cycleSeconds,
      maxCycles: settings.maxCycles,
    };
    // Whether the machine had CPU to spare: a second process can only add throughput if it had.
    // And, on PostgreSQL, what its backends waited for meanwhile (bench/postgres-waits.ts).
    const measureCycles = async (urls: string[]) => {
      const waits = databaseName === null ? null : await sampleWaits(db.adminUrl, databaseName);
      const before = runCostReading(servers);
      const result = await leaseCycles(urls, 'cycle', cycleOptions).finally(() => waits?.stop());
      return { ...result, ...before.per(result.cycles), waits: (await waits?.stop()) ?? null };
    };
    const one = await measureCycles([first.graphqlUrl]);
    if (!floor) {
      push(...cycleRows(one, null, null));
      throw new Done();
    }
    servers.push(await startBenchServer(serverSettings));
    log(`server 2: pid ${servers[1]!.pid}`);
    push(
      ...startUpRows(helpMs, [
        { label: 'first process (applies every migration)', ms: first.startToReadyMs },
        { label: 'second process, database up to date', ms: servers[1]!.startToReadyMs },
      ]),
    );
    log('cycles, two servers');
    const two = await measureCycles(servers.map((s) => s.graphqlUrl));
    push(...cycleRows(one, two, floor), ...waitRows([one, two]));
    await servers.pop()!.stop();
    load.push(`after cycles ${loadavg()[0]!.toFixed(2)}`);
  }
  if (pgliteDir) throw new Done();

  if (want('mixed')) {
    log('mixed priorities, several owners');
    push(
      ...mixedOrderRows(await mixedOrder(first.graphqlUrl, 'mixed', { owners: 3, perOwner: settings.quick ? 4 : 10 })),
    );
  }

  if (want('handoff')) {
    log('hand-off');
    await createHostPool(first.graphqlUrl, 'handoff', 1);
    push(
      ...handoffRows(
        await handoff(first.graphqlUrl, 'handoff', { handoffs: settings.handoffs, seconds: settings.handoffSeconds }),
      ),
    );
  }

  if (want('fanout') || want('idle')) await createHostPool(first.graphqlUrl, 'fanout', 1);
  if (want('fanout')) {
    log(`fan-out to ${settings.subscribers} subscribers`);
    push(
      ...fanoutRows(
        await fanout(first.graphqlUrl, first.pid, 'fanout', {
          subscribers: settings.subscribers,
          batch: settings.subscriberBatch,
          timeoutMs: 60_000,
        }),
      ),
    );
    load.push(`after fan-out ${loadavg()[0]!.toFixed(2)}`);
  }
  if (want('idle')) {
    log(`${settings.idleSubscribers} idle subscribers`);
    push(
      ...idleRows(
        await fanout(first.graphqlUrl, first.pid, 'fanout', {
          subscribers: settings.idleSubscribers,
          batch: settings.subscriberBatch * 4,
          timeoutMs: 120_000,
          // Not in the fan-out row: a collection just before its release would spare the timed
          // fan-out a collection it would otherwise have met.
          collectGarbage: first.collectGarbage,
        }),
        fileLimit,
      ),
    );
    load.push(`after idle ${loadavg()[0]!.toFixed(2)}`);
  }
  if (want('spread')) {
    // Two server processes of its own, so that each one's memory is that of this row alone.
    const pair = [await startBenchServer(serverSettings), await startBenchServer(serverSettings)] as const;
    servers.push(...pair);
    log(`${settings.spreadSubscribers} subscribers over two servers (pids ${pair[0].pid}, ${pair[1].pid})`);
    await createHostPool(pair[0].graphqlUrl, 'spread', 1);
    push(
      ...spreadRows(
        await spread([...pair], 'spread', {
          subscribers: settings.spreadSubscribers,
          batch: settings.subscriberBatch * 4,
          timeoutMs: 120_000,
        }),
      ),
    );
    for (const server of servers.splice(-2)) await server.stop();
    load.push(`after spread ${loadavg()[0]!.toFixed(2)}`);
  }

  if (want('overload')) {
    // A server of its own with load shedding at its defaults.
    const shedding = await startBenchServer({
      ...serverSettings,
      shedding: settings.overloadLimits ?? true,
      ...(settings.overloadMinInFlight ? { env: { MIN_IN_FLIGHT: String(settings.overloadMinInFlight) } } : {}),
    });
    servers.push(shedding);
    const lifted = await startBenchServer(serverSettings);
    servers.push(lifted);
    log(`overload: 3× capacity (server ${lifted.pid}) for ${settings.overloadSeconds} s (server ${shedding.pid})`);
    push(
      ...overloadRows(
        await overload(shedding.graphqlUrl, lifted.graphqlUrl, {
          factor: 3,
          seconds: settings.overloadSeconds,
          probeSeconds: settings.quick ? 1 : 5,
          warmSeconds: settings.quick ? 1 : 10,
          clients: 16,
          connections: 256,
        }),
      ),
    );
    await servers.pop()!.stop();
    await servers.pop()!.stop();
    load.push(`after overload ${loadavg()[0]!.toFixed(2)}`);
  }

  const pools = [];
  for (const hosts of want('pools') ? settings.poolSizes : []) {
    log(`pool of ${hosts} hosts`);
    pools.push(
      await poolScaling(first.graphqlUrl, hosts, {
        rate: settings.poolRate,
        seconds: settings.poolSeconds,
        fillTimeoutSeconds: settings.poolFillSeconds,
        cpuMs: () => cpuMs(first.pid) + postgresCpuMs(databaseName ?? ''),
      }),
    );
  }
  if (pools.length > 0 && !pgliteDir) {
    log('pools again, after VACUUM ANALYZE');
    const maintained = await maintainedPools(first.graphqlUrl, pools, () => vacuumAnalyze(db.url), {
      rate: settings.poolRate,
      seconds: settings.poolSeconds,
      cpuMs: () => cpuMs(first.pid) + postgresCpuMs(databaseName ?? ''),
    });
    pools.splice(0, pools.length, ...maintained);
  }
  if (pools.length > 0) push(...poolRows(pools));
  load.push(`end ${loadavg()[0]!.toFixed(2)}`);
} catch (error) {
  if (!(error instanceof Done)) throw error;
} finally {
  for (const server of servers) await server.stop();
  await db.drop();
}

const conditions = pgliteDir
  ? [
      `mode: ${settings.quick ? 'quick' : 'full'}, PGlite (--pglite); total ${((Date.now() - started) / 1_000).toFixed(0)} s`,
      `node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); one server process on PGlite (one connection)`,
      `grants: ${settings.grantRate}/s for ${settings.grantSeconds} s on a ${GRANT_POOL_HOSTS}-host pool; backlog ${settings.backlog} (on a pool of as many hosts, built first); cycles: ${settings.cycleClients} clients for ${settings.cycleSeconds} s`,
      `load average (1 min): ${load.join(', ')} — the machine is shared, so numbers are noisy`,
    ]
  : [
      `mode: ${settings.quick ? 'quick' : 'full'}; total ${((Date.now() - started) / 1_000).toFixed(0)} s`,
      `node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); PostgreSQL ${db.serverVersion} (autovacuum ${db.autovacuum})`,
      `server processes: 1 (2 for the two-process cycle row); DATABASE_POOL_SIZE ${settings.poolSize} per process; WORKER_CONCURRENCY ${settings.workerConcurrency}`,
      `raw floor: ${settings.poolSize} connections for ${settings.rawSeconds} s; grants: ${settings.grantRate}/s for ${settings.grantSeconds} s on a ${GRANT_POOL_HOSTS}-host pool`,
      `cycles: ${settings.cycleClients} closed-loop clients for ${settings.cycleSeconds} s; hand-off: up to ${settings.handoffs} in ${settings.handoffSeconds} s`,
      `fan-out: ${settings.subscribers} graphql-ws connections from one client process (idle row: ${settings.idleSubscribers}; spread row: ${settings.spreadSubscribers} over 2 server processes, from 2 client processes); overload: ${settings.overloadSeconds} s, default MAX_IN_FLIGHT, MIN_IN_FLIGHT ${settings.overloadMinInFlight ?? 'default'}; pools: ${settings.poolSizes.join(', ')} hosts, ${settings.poolRate}/s for ${settings.poolSeconds} s`,
      `open-file limit ${fileLimit}; load average (1 min): ${load.join(', ')} — the machine is shared, so numbers are noisy`,
    ];
process.stdout.write(`\n${conditions.map((c) => `- ${c}`).join('\n')}\n\n${markdownTable(rows)}\n`);
