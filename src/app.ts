import { isLoopback } from './auth/authenticate.js';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { applyMigrations } from './db/migrate.js';
import { autovacuumOffWarning, autovacuumSetting, startUpkeep, UPKEEP_INTERVAL_MS } from './db/upkeep.js';
import { createEventFanout } from './events/event-target.js';
import { createDrydockPubSub, pubSubSink } from './events/pubsub.js';
import type { Logger } from './logger.js';
import { createServices, type Services, type ServicesDeps } from './services/index.js';
import { buildSchema } from './schema/index.js';
import { createMetrics } from './server/metrics/index.js';
import { startTracing } from './tracing.js';
import { startHttpServer, GRAPHQL_PATH } from './server/http.js';
import { NewerDatabaseWatch } from './server/newer-database.js';
import { warmUp } from './warm-up/warm-up.js';

export interface App {
  db: Database;
  services: Services;
  url: string;
  graphqlUrl: string;
  /**
   * Resolves, with the migrations this build does not have, once a newer build has migrated the
   * database: the process must stop (main.ts shuts it down). Never resolves otherwise.
   */
  newerDatabase: Promise<string[]>;
  /** `onStep` is told what the close waits for next, so that a shutdown that overruns can say what. */
  close(onStep?: (waitingFor: string) => void): Promise<void>;
}

type ServeOptions = Pick<
  Config,
  | 'port'
  | 'host'
  | 'shutdownTimeoutMs'
  | 'schemaCheckIntervalMs'
  | 'workerConcurrency'
  | 'jobClaimTtlMs'
  | 'databaseUpkeep'
  | 'redisUrl'
  | 'allowLocalAnonymous'
  | 'allowLocalTransport'
  | 'corsOrigins'
  | 'sshStateDir'
  | 'introspection'
  | 'maxQueryDepth'
  | 'maxInputDepth'
  | 'maxQueryTokens'
  | 'leaseAttributeLimits'
  | 'maxQueryCost'
  | 'maxBodyBytes'
  | 'listenBacklog'
  | 'passGapMs'
  | 'rateLimitPerMinute'
  | 'authFailuresPerMinute'
  | 'maxInFlight'
  | 'maxInFlightPerPrincipal'
  | 'adaptiveInFlight'
  | 'minInFlight'
  | 'inFlightLatencyTolerance'
  | 'eventLoopLagLimitMs'
  | 'wsMaxBufferedBytes'
  | 'metrics'
  | 'otlpEndpoint'
  | 'otelServiceName'
>;

/**
 * PGlite runs one statement at a time, in this process: there, passes that each found one lease
 * waiting took most of a saturated process's time (scheduler/pacing.ts). On PostgreSQL passes
 * already serve together what arrives while one runs.
 */
const EMBEDDED_PASS_GAP_MS = 10;

/**
 * Serves the API on an open, migrated database and runs the allocator's queue in this process;
 * `close` stops both but leaves the database open.
 */
export async function serve(
  db: Database,
  config: ServeOptions,
  logger: Logger,
  extra: Partial<Pick<ServicesDeps, 'implementations' | 'allocator'>> = {},
): Promise<App> {
  const fanout = await createEventFanout({ redisUrl: config.redisUrl, db, logger });
  logger.info(`events between processes: ${fanout.kind}`);
  const autovacuumOff = (await autovacuumSetting(db)) === 'off';
  if (autovacuumOff) logger.warn(autovacuumOffWarning(config.databaseUpkeep));
  const upkeep = autovacuumOff && config.databaseUpkeep ? startUpkeep(db, logger, UPKEEP_INTERVAL_MS) : null;
  const metrics = config.metrics ? createMetrics(db) : undefined;
  const tracing = config.otlpEndpoint ? await startTracing(config.otelServiceName, logger) : undefined;
  const pubsub = createDrydockPubSub(fanout.target, metrics && ((ms) => metrics.deliveryLag.observe(ms / 1_000)));
  // With a fan-out between processes, work scheduled here may be taken by a worker elsewhere.
  const shareWakeUps = fanout.kind !== 'in-process';
  const services = createServices({
    db,
    events: metrics ? metrics.observe(pubSubSink(pubsub)) : pubSubSink(pubsub),
    worker: { claimTtlMs: config.jobClaimTtlMs },
    transports: { allowLocal: config.allowLocalTransport, stateDir: config.sshStateDir },
    onTokenRevoked: (tokenId: number) => pubsub.publish('token:revoked', tokenId),
    ...(shareWakeUps ? { onWake: (runAt: Date) => pubsub.publish('jobs:due', runAt.getTime()) } : {}),
    ...(metrics ? { passes: metrics.passes } : {}),
    deadlocks: {
      retried: ({ what, attempt }) => {
        logger.line('warn', 'deadlock: PostgreSQL failed a transaction as its victim; running it again', {
          what,
          attempt,
        });
        metrics?.deadlockRetries.inc({ what });
      },
    },
    ...extra,
    allocator: {
      leaseAttributeLimits: config.leaseAttributeLimits,
      passGapMs: config.passGapMs ?? (db.kind === 'pglite' ? EMBEDDED_PASS_GAP_MS : 0),
      ...extra.allocator,
    },
  });
  const worker = config.workerConcurrency > 0 ? services.worker.start({ concurrency: config.workerConcurrency }) : null;
  const wakeUps = worker && shareWakeUps ? pubsub.subscribe('jobs:due') : null;
  if (wakeUps && worker) {
    void (async () => {
      for await (const runAtMs of wakeUps) worker.notify(new Date(runAtMs));
    })();
  }
  const migrations = new NewerDatabaseWatch(db, logger, config.schemaCheckIntervalMs);
  const anonymous = config.allowLocalAnonymous && isLoopback(config.host) ? 'local-admin' : 'reject';
  logger.info(
    anonymous === 'local-admin'
      ? `anonymous requests act as the local admin: the server listens on ${config.host} only (ALLOW_LOCAL_ANONYMOUS=false turns this off)`
      : 'every request needs an API token',
  );
  if (config.allowLocalTransport) {
    logger.warn('ALLOW_LOCAL_TRANSPORT is on: leases on local hosts run commands on this machine as this user');
  }
  const server = await startHttpServer(
    {
      db,
      services,
      pubsub,
      schema: buildSchema(),
      logger,
      metrics,
      tracing: tracing?.plugin,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      migrations,
      anonymous,
      corsOrigins: config.corsOrigins,
      limits: {
        maxDepth: config.maxQueryDepth,
        maxCost: config.maxQueryCost,
        introspection: config.introspection,
        maxInputDepth: config.maxInputDepth,
        maxTokens: config.maxQueryTokens,
      },
      maxBodyBytes: config.maxBodyBytes,
      listenBacklog: config.listenBacklog,
      rateLimitPerMinute: config.rateLimitPerMinute,
      authFailuresPerMinute: config.authFailuresPerMinute,
      shedding: {
        maxInFlight: config.maxInFlight,
        adaptiveInFlight: config.adaptiveInFlight,
        minInFlight: config.minInFlight,
        inFlightLatencyTolerance: config.inFlightLatencyTolerance,
        eventLoopLagLimitMs: config.eventLoopLagLimitMs,
      },
      maxInFlightPerPrincipal: config.maxInFlightPerPrincipal,
      wsMaxBufferedBytes: config.wsMaxBufferedBytes,
    },
    config.port,
    config.host,
  ).catch(async (error: unknown) => {
    // Not listening (the port taken, say): what started stops, so that a caller that goes on (a
    // test, an embedding) keeps no worker claiming jobs, nor a timer, on its database.
    await stopServing({ fanout, upkeep, tracing, worker, wakeUps, migrations }, () => {});
    throw error;
  });
  return {
    db,
    services,
    url: server.url,
    graphqlUrl: server.url + GRAPHQL_PATH,
    newerDatabase: migrations.found,
    close: (onStep = () => {}) => stopServing({ fanout, upkeep, tracing, worker, wakeUps, migrations, server }, onStep),
  };
}

/** What serve() started. */
interface Serving {
  fanout: Awaited<ReturnType<typeof createEventFanout>>;
  upkeep: ReturnType<typeof startUpkeep> | null;
  tracing: Awaited<ReturnType<typeof startTracing>> | undefined;
  worker: ReturnType<Services['worker']['start']> | null;
  wakeUps: AsyncGenerator<unknown> | null;
  migrations: NewerDatabaseWatch;
  server?: Awaited<ReturnType<typeof startHttpServer>>;
}

/** Stops what serve() started. `onStep` is told what it waits for next (see App.close). */
async function stopServing(serving: Serving, onStep: (waitingFor: string) => void): Promise<void> {
  serving.migrations.stop();
  // Requests first (they may schedule work), then the queue, which finishes the jobs it holds.
  onStep('in-flight requests');
  await serving.server?.close();
  await serving.wakeUps?.return(undefined);
  // A request cut short at the timeout may still hold a slot of the queue for the job it meant
  // to hand it, so the queue can be waiting on requests too.
  onStep('requests or queue jobs');
  await serving.worker?.stop();
  onStep('database upkeep');
  await serving.upkeep?.stop();
  onStep('the event fan-out');
  await serving.fanout.close();
  onStep('the trace export');
  await serving.tracing?.shutdown();
}

/** Opens the configured database, brings it up to date, and serves the API until `close`. */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    logger,
  });
  logger.info(`database: ${db.kind === 'pglite' ? 'embedded PGlite' : 'PostgreSQL'} at ${db.location}`);
  try {
    const applied = await applyMigrations(db);
    logger.info(applied.length > 0 ? `migrations applied: ${applied.join(', ')}` : 'migrations: up to date');
    await warmUp(db, config, logger, serve);
    const app = await serve(db, config, logger);
    return {
      ...app,
      async close(onStep = () => {}) {
        await app.close(onStep);
        // What still holds a connection here is a request whose connection shutdown closed, its
        // resolver waiting in the database (on a lock another client holds, say).
        onStep('requests in the database');
        await db.close();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
