import { resolve } from 'node:path';
import { z } from 'zod';
import { defaultAllocatorOptions, type LeaseAttributeLimits } from './allocator/options.js';
import { projectRoot } from './db/migrations-folder.js';
import { defaultLogFormat, type LogFormat } from './logger.js';

const WHOLE = 'must be a whole number';

/**
 * A number variable: plain decimal digits (a fraction too with `fraction`), blanks around them
 * allowed, a leading minus left to `check`'s range. Any other text, blanks alone included, reaches
 * `check` as text and fails as not a number: z.coerce took " " for 0, 0x1005 for 4101, 4.5e3 for
 * 4500. (An empty value never gets here: it is unset, see `unsetWhenEmpty`.)
 */
function numberVariable(check: (number: z.ZodNumber) => z.ZodNumber, { fraction = false } = {}) {
  const plain = fraction ? /^\s*-?(?:\d+\.?\d*|\.\d+)\s*$/ : /^\s*-?\d+\s*$/;
  const number = fraction ? z.number({ error: 'must be a number' }) : z.number({ error: WHOLE }).int(WHOLE);
  return z.preprocess(
    (value) => (typeof value === 'string' && plain.test(value) ? Number(value) : value),
    check(number),
  );
}

const port = numberVariable((number) =>
  number.min(0, 'must be between 0 and 65535').max(65535, 'must be between 0 and 65535'),
);

const positiveInt = numberVariable((number) => number.positive('must be at least 1'));
/** A duration some timer waits: past a Node timer's longest, it would fire after 1 ms instead. */
const timerMs = numberVariable((number) =>
  number.positive('must be at least 1').max(2_147_483_647, "must be at most 2147483647 (a timer's longest)"),
);

/** A name or a path: blanks alone are empty too. */
const nonEmpty = z.string().trim().min(1, 'must not be empty');

const postgresUrl = z
  .string()
  .refine((value) => /^postgres(ql)?:\/\/.+/.test(value), 'must be a postgresql:// or postgres:// URL');

const boolean = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1');

const attributeDefaults = defaultAllocatorOptions.leaseAttributeLimits;

const schema = z.object({
  PORT: port.default(4000),
  HOST: nonEmpty.default('127.0.0.1'),
  DATABASE_URL: postgresUrl.optional(),
  REDIS_URL: z
    .string()
    .refine((value) => /^rediss?:\/\/.+/.test(value), 'must be a redis:// or rediss:// URL')
    .optional(),
  DATA_DIR: nonEmpty.default(resolve(projectRoot, 'data', 'pglite')),
  SSH_STATE_DIR: nonEmpty.default(resolve(projectRoot, 'data', 'ssh')),
  DATABASE_POOL_SIZE: positiveInt.default(10),
  SHUTDOWN_TIMEOUT_MS: timerMs.default(10_000),
  SCHEMA_CHECK_INTERVAL_MS: timerMs.default(15_000),
  WORKER_CONCURRENCY: numberVariable((number) => number.min(0, 'must be 0 (no worker) or more')).default(4),
  ALLOW_LOCAL_ANONYMOUS: boolean.default(true),
  ALLOW_LOCAL_TRANSPORT: boolean.default(false),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .string()
          .refine(
            (origin) => /^https?:\/\/[^/\s]+$/.test(origin),
            'must be web origins separated by commas, each like https://dash.example.com (scheme, host, port; no path)',
          ),
      ),
    ),
  INTROSPECTION: boolean.default(true),
  MAX_QUERY_DEPTH: positiveInt.default(12),
  MAX_QUERY_COST: positiveInt.default(20_000),
  MAX_INPUT_DEPTH: positiveInt.default(32),
  MAX_QUERY_TOKENS: positiveInt.default(5_000),
  LEASE_ATTRIBUTES_MAX_KEYS: positiveInt.default(attributeDefaults.maxKeys),
  LEASE_ATTRIBUTE_VALUE_MAX_LENGTH: positiveInt.default(attributeDefaults.maxValueLength),
  LEASE_ATTRIBUTES_MAX_BYTES: positiveInt.default(attributeDefaults.maxTotalBytes),
  MAX_BODY_BYTES: positiveInt.default(262_144),
  LISTEN_BACKLOG: positiveInt.default(4_096),
  // Unset: 10 ms on the embedded database, 0 on PostgreSQL (app.ts).
  SCHEDULING_PASS_GAP_MS: numberVariable((number) =>
    number.min(0, 'must be 0 or more').max(1_000, 'must be at most 1000'),
  ).optional(),
  RATE_LIMIT_PER_MINUTE: positiveInt.default(1_200),
  AUTH_FAILURES_PER_MINUTE: positiveInt.default(60),
  MAX_IN_FLIGHT: positiveInt.default(64),
  MAX_IN_FLIGHT_PER_PRINCIPAL: positiveInt.default(32),
  ADAPTIVE_IN_FLIGHT: boolean.default(true),
  MIN_IN_FLIGHT: positiveInt.default(8),
  IN_FLIGHT_LATENCY_TOLERANCE: numberVariable(
    (number) => number.min(1, 'must be at least 1 (the uncontended latency)'),
    { fraction: true },
  ).default(2),
  EVENT_LOOP_LAG_LIMIT_MS: timerMs.default(50),
  WS_MAX_BUFFERED_BYTES: positiveInt.default(4_194_304),
  JOB_CLAIM_TTL_MS: timerMs.default(60_000),
  DATABASE_UPKEEP: boolean.default(true),
  WARM_UP_LEASES: numberVariable((number) =>
    number.min(0, 'must be 0 (no warm-up) or more').max(1_000, 'must be at most 1000'),
  ).default(200),
  LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error'], { error: 'must be one of debug, info, warn, error' })
    .default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty'], { error: 'must be json or pretty' }).optional(),
  METRICS: boolean.default(true),
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .string()
    .refine((value) => /^https?:\/\/.+/.test(value), 'must be an http:// or https:// URL')
    .optional(),
  OTEL_SERVICE_NAME: nonEmpty.default('drydock'),
});

/** Every variable the configuration reads. */
export const configVariables: readonly string[] = Object.keys(schema.shape);

/**
 * One rule for every variable: an empty value is unset, and the default applies. docker-compose
 * and systemd's EnvironmentFile give `FOO=` for a line left blank, which means "not chosen", not
 * a value. Applied to the whole environment before any variable is read, so that no variable,
 * one added later included, can read it otherwise.
 */
function unsetWhenEmpty(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
}

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** Events between processes go through Redis when set, else PostgreSQL NOTIFY. */
  redisUrl: string | undefined;
  dataDir: string;
  /** Where ssh pins the host keys it has seen (known_hosts): kept across restarts. */
  sshStateDir: string;
  /**
   * SSH_STATE_DIR was set: it is checked at start then. The default is left to the first ssh
   * command, so that a server that never uses ssh does not need it to be writable.
   */
  sshStateDirSet: boolean;
  databasePoolSize: number;
  shutdownTimeoutMs: number;
  /** How often a running process looks whether a newer build migrated its database (then it stops). */
  schemaCheckIntervalMs: number;
  workerConcurrency: number;
  /** A job claim not renewed for this long (its process died) is taken over by another process. */
  jobClaimTtlMs: number;
  /** On a PostgreSQL without autovacuum, vacuum and analyze this service's tables as autovacuum would. */
  databaseUpkeep: boolean;
  /**
   * PostgreSQL: lease cycles a new process runs through its own API, on tables of its own, before
   * it listens (warm-up/warm-up.ts); 0 skips them.
   */
  warmUpLeases: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** JSON lines by default; pretty when stderr is a terminal (or LOG_FORMAT=pretty). */
  logFormat: LogFormat;
  /** Serve Prometheus metrics at /metrics. */
  metrics: boolean;
  /** Traces go to this OTLP/HTTP collector when set; no tracing otherwise. */
  otlpEndpoint: string | undefined;
  otelServiceName: string;
  /** Anonymous requests act as a local admin, but only while the server listens on loopback alone. */
  allowLocalAnonymous: boolean;
  /** Host-pool bindings may use the `local` transport: leased commands run on this machine, as this user. */
  allowLocalTransport: boolean;
  /** Web origins whose pages may call the API with a token (CORS); none by default. */
  corsOrigins: string[];
  introspection: boolean;
  maxQueryDepth: number;
  maxQueryCost: number;
  maxInputDepth: number;
  maxQueryTokens: number;
  /** Bounds on a lease request's attributes: key count, one value's length (as JSON), their total size. */
  leaseAttributeLimits: LeaseAttributeLimits;
  maxBodyBytes: number;
  /** Connections the kernel completes and holds for the process to accept (capped by net.core.somaxconn). */
  listenBacklog: number;
  /** See AllocatorOptions.passGapMs; unset: the database's default (app.ts). */
  passGapMs: number | undefined;
  rateLimitPerMinute: number;
  /** Failed authentications (unknown, revoked or expired tokens) per minute per client address; past it, 429. */
  authFailuresPerMinute: number;
  /** GraphQL requests running at once in this process; past it, 503 with Retry-After. */
  maxInFlight: number;
  /** The same for one principal; past it, 429 with Retry-After. */
  maxInFlightPerPrincipal: number;
  /** The process bound moves between minInFlight and maxInFlight with measured latency and loop lag. */
  adaptiveInFlight: boolean;
  minInFlight: number;
  /** How many times its uncontended latency a process lets its mean latency reach before admitting less. */
  inFlightLatencyTolerance: number;
  /** Loop lag that, held for a few checks in a row, refuses new work. */
  eventLoopLagLimitMs: number;
  /** Unsent data a WebSocket may hold before it is closed as too slow. */
  wsMaxBufferedBytes: number;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment; every bad variable is named in one error. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, stderr: { isTTY?: boolean } = process.stderr): Config {
  const set = unsetWhenEmpty(env);
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0]);
        const value = env[name];
        const secret = name === 'DATABASE_URL' || name === 'REDIS_URL' || name === 'OTEL_EXPORTER_OTLP_ENDPOINT';
        const shown = secret || value === undefined ? '' : ` (got "${value}")`;
        return `${name} ${issue.message}${shown}`;
      }),
    );
  }
  const v = parsed.data;
  return {
    port: v.PORT,
    host: v.HOST,
    databaseUrl: v.DATABASE_URL,
    redisUrl: v.REDIS_URL,
    dataDir: resolve(v.DATA_DIR),
    sshStateDir: resolve(v.SSH_STATE_DIR),
    sshStateDirSet: set['SSH_STATE_DIR'] !== undefined,
    databasePoolSize: v.DATABASE_POOL_SIZE,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    schemaCheckIntervalMs: v.SCHEMA_CHECK_INTERVAL_MS,
    workerConcurrency: v.WORKER_CONCURRENCY,
    jobClaimTtlMs: v.JOB_CLAIM_TTL_MS,
    databaseUpkeep: v.DATABASE_UPKEEP,
    warmUpLeases: v.WARM_UP_LEASES,
    logLevel: v.LOG_LEVEL,
    logFormat: v.LOG_FORMAT ?? defaultLogFormat(stderr),
    metrics: v.METRICS,
    otlpEndpoint: v.OTEL_EXPORTER_OTLP_ENDPOINT,
    otelServiceName: v.OTEL_SERVICE_NAME,
    allowLocalAnonymous: v.ALLOW_LOCAL_ANONYMOUS,
    allowLocalTransport: v.ALLOW_LOCAL_TRANSPORT,
    corsOrigins: v.CORS_ORIGINS,
    introspection: v.INTROSPECTION,
    maxQueryDepth: v.MAX_QUERY_DEPTH,
    maxQueryCost: v.MAX_QUERY_COST,
    maxInputDepth: v.MAX_INPUT_DEPTH,
    maxQueryTokens: v.MAX_QUERY_TOKENS,
    leaseAttributeLimits: {
      maxKeys: v.LEASE_ATTRIBUTES_MAX_KEYS,
      maxValueLength: v.LEASE_ATTRIBUTE_VALUE_MAX_LENGTH,
      maxTotalBytes: v.LEASE_ATTRIBUTES_MAX_BYTES,
    },
    maxBodyBytes: v.MAX_BODY_BYTES,
    listenBacklog: v.LISTEN_BACKLOG,
    passGapMs: v.SCHEDULING_PASS_GAP_MS,
    rateLimitPerMinute: v.RATE_LIMIT_PER_MINUTE,
    authFailuresPerMinute: v.AUTH_FAILURES_PER_MINUTE,
    maxInFlight: v.MAX_IN_FLIGHT,
    maxInFlightPerPrincipal: v.MAX_IN_FLIGHT_PER_PRINCIPAL,
    adaptiveInFlight: v.ADAPTIVE_IN_FLIGHT,
    minInFlight: v.MIN_IN_FLIGHT,
    inFlightLatencyTolerance: v.IN_FLIGHT_LATENCY_TOLERANCE,
    eventLoopLagLimitMs: v.EVENT_LOOP_LAG_LIMIT_MS,
    wsMaxBufferedBytes: v.WS_MAX_BUFFERED_BYTES,
  };
}
