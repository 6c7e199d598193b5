import type { Config } from '../config.js';
import { openDatabase, type Database } from '../db/database.js';
import { applyMigrations } from '../db/migrate.js';
import { generateToken } from '../auth/tokens.js';
import { createLogger, type Logger } from '../logger.js';
import { graphql, runLeaseCycles, type CycleTarget } from './lease-cycles.js';
import { withScratchSchema } from './scratch-schema.js';

// A process that has just started runs its first requests through code the JIT has not compiled
// yet: under a steady load, the grants of its first second take several times as long as later
// ones. So before it listens, a process on PostgreSQL serves lease cycles to itself:
// the same API, allocator and event path its users get, in a second instance of the service on
// tables of its own (a scratch schema, dropped afterwards). The compiled code is shared by every
// instance in the process, so the service that then listens starts warm. A warm-up that fails is
// reported and skipped: the process serves cold, as it would without one.

/** Starts the service on a database; app.ts's serve, given so that this module need not import it. */
export type Serve = (
  db: Database,
  config: Config,
  logger: Logger,
) => Promise<{ graphqlUrl: string; close(): Promise<void> }>;

const RESOURCE_TYPE = 'warm-up';
/** Concurrent clients: passes that grant several leases run too, as they do under load. */
const CLIENTS = 8;
const HOSTS = 16;
/**
 * The scratch instance's pool: enough for its clients, and few, since processes starting together
 * each open one beside their own pool.
 */
const POOL_SIZE = 4;
/**
 * No cycle starts after this: on a loaded machine the warm-up does fewer rather than hold the
 * start up for longer.
 */
const CYCLES_BUDGET_MS = 5_000;
/** Past this the warm-up gives up: a start must not hang on it. */
const DEADLINE_MS = 60_000;

export async function warmUp(
  db: Database,
  config: Config,
  logger: Logger,
  serve: Serve,
  budgetMs = CYCLES_BUDGET_MS,
): Promise<void> {
  if (config.warmUpLeases === 0 || db.kind !== 'postgresql' || !db.url) return;
  const url = db.url;
  const started = performance.now();
  try {
    const done = await withScratchSchema(db, (schema) => warmScratch(url, schema, config, logger, serve, budgetMs));
    const cut = done.cycles < config.warmUpLeases ? ` (of ${config.warmUpLeases}: its ${budgetMs} ms were up)` : '';
    logger.info(
      `warm-up: ${done.cycles} lease cycles${cut} through the API in ${Math.round(done.ms)} ms, ` +
        `${Math.round(performance.now() - started)} ms with its scratch schema's set-up (WARM_UP_LEASES)`,
    );
  } catch (error) {
    logger.warn(`warm-up failed, so this process serves its first requests cold: ${failure(error)}`);
  }
}

/** Serves the lease cycles on the scratch schema: how many, and how long they took. */
async function warmScratch(
  url: string,
  schema: string,
  config: Config,
  logger: Logger,
  serve: Serve,
  budgetMs: number,
): Promise<{ cycles: number; ms: number }> {
  const scratch = await openDatabase({ url, dataDir: '', schema, poolSize: POOL_SIZE, logger });
  try {
    await applyMigrations(scratch);
    const token = await adminToken(scratch);
    // Its own lines would read as the service's (its listening address, its settings): only its
    // errors are worth showing, and warmUp's warning says what failed.
    const app = await serve(scratch, scratchConfig(config), createLogger('error', { format: config.logFormat }));
    try {
      const target = {
        graphqlUrl: app.graphqlUrl,
        token,
        resourceType: RESOURCE_TYPE,
        deadline: Date.now() + DEADLINE_MS,
      };
      await createHostPool(target);
      const started = performance.now();
      const cycles = await runLeaseCycles(target, config.warmUpLeases, CLIENTS, Date.now() + budgetMs);
      return { cycles, ms: performance.now() - started };
    } finally {
      await app.close();
    }
  } finally {
    await scratch.close();
  }
}

function failure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // PostgreSQL's insufficient_privilege: the database user may not create schemas.
  if ((error as { code?: unknown }).code === '42501')
    return `${message}: the warm-up needs CREATE on the database for a scratch schema (or WARM_UP_LEASES=0 to turn it off)`;
  return message;
}

/**
 * The instance's settings: the operator's, but listening only on loopback on a port of its own,
 * with a token for every request (its port is open to this machine while it runs), its events
 * kept to its own schema's channel, nothing sent outside the process, and no request refused.
 */
function scratchConfig(config: Config): Config {
  return {
    ...config,
    host: '127.0.0.1',
    port: 0,
    allowLocalAnonymous: false,
    redisUrl: undefined,
    otlpEndpoint: undefined,
    // prom-client's default collectors (event loop delay, GC) would go on running for the process.
    metrics: false,
    databaseUpkeep: false,
    // Its leases are granted by its own worker, even in a process that runs none for its users.
    workerConcurrency: Math.max(1, config.workerConcurrency),
    // Its clients must not be refused: the operator's limits are for the service's load.
    rateLimitPerMinute: Math.max(config.rateLimitPerMinute, 10 * config.warmUpLeases),
    adaptiveInFlight: false,
    maxInFlight: Math.max(config.maxInFlight, 2 * CLIENTS),
    maxInFlightPerPrincipal: Math.max(config.maxInFlightPerPrincipal, 2 * CLIENTS),
    warmUpLeases: 0,
  };
}

/** An admin principal of the scratch tables, and its token: what the cycles authenticate with. */
async function adminToken(scratch: Database): Promise<string> {
  const { token, hash, prefix } = generateToken();
  await scratch.prisma.principal.create({
    data: {
      name: 'warm-up',
      kind: 'SERVICE',
      isAdmin: true,
      tokens: { create: { name: 'warm-up', tokenHash: hash, prefix, scopes: ['READ', 'LEASE', 'ADMIN'] } },
    },
  });
  return token;
}

async function createHostPool(target: CycleTarget): Promise<void> {
  const data = await graphql<{ createBlueprint: { __typename: string; message?: string } }>(
    target,
    `
      mutation ($input: CreateBlueprintInput!) {
        createBlueprint(input: $input) {
          __typename
          ... on Error {
            message
          }
        }
      }
    `,
    {
      input: {
        name: RESOURCE_TYPE,
        implementation: 'host-pool',
        resourceType: RESOURCE_TYPE,
        config: {
          services: [
            {
              name: RESOURCE_TYPE,
              // Addresses of the documentation range (RFC 5737): nothing connects to them.
              bindings: Array.from({ length: HOSTS }, (_, i) => ({
                name: `h${i}`,
                address: `192.0.2.${i + 1}`,
                port: 22,
              })),
            },
          ],
        },
      },
    },
  );
  if (data.createBlueprint.__typename !== 'BlueprintPayload')
    throw new Error(`createBlueprint: ${data.createBlueprint.message}`);
}
