import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';
import type { Logger } from '../logger.js';

export type DatabaseKind = 'postgresql' | 'pglite';

export interface DatabaseOptions {
  /** PostgreSQL connection string; without it an embedded PGlite database is used. */
  url?: string | undefined;
  /** Where PGlite keeps its files (`memory://` for a throwaway database). */
  dataDir: string;
  /**
   * PGlite in memory only: start from this copy of a data directory (PGlite's dumpDataDir) rather
   * than an empty one. The tests' databases start so from one migrated copy: an empty one runs
   * initdb first, which takes most of the time of opening one.
   */
  initialData?: Blob | undefined;
  /** PostgreSQL schema to work in (tests isolate themselves this way). */
  schema?: string | undefined;
  poolSize?: number | undefined;
  /** Where a connection the database dropped while idle is reported (the service's log); stderr without one. */
  logger?: Pick<Logger, 'warn'> | undefined;
}

export interface Database {
  kind: DatabaseKind;
  /** The PostgreSQL connection string (with credentials: never log it); undefined for PGlite. */
  url: string | undefined;
  /** Where the data lives, without credentials: for the start-up banner and /readyz. */
  location: string;
  /** The PostgreSQL schema the tables are in, when one was chosen (`?schema=` or the option); else undefined. */
  schema: string | undefined;
  prisma: PrismaClient;
  /** The embedded database itself (PGlite only): the allocator's statements go to it directly. */
  embedded?: PGlite;
  /**
   * PGlite: no other process can use the data while this one has it open (the data directory's
   * lock; in memory nobody else can reach it), and `holder` names this opening, new each time.
   * So anything marked with another holder (a job claim) was left by a process that is gone: a
   * kill -9 leaves its lock behind, the next start takes the lock over and finds its claims.
   * Undefined on PostgreSQL, which processes share; the queue tells dead ones apart there by lock.
   */
  exclusive: { holder: string } | undefined;
  /** Adapter factory for the schema engine (migrations). */
  adapterFactory: SqlMigrationAwareDriverAdapterFactory;
  /**
   * A connection of its own for the schema engine, closed by `close`. Prisma's engine takes its
   * migration advisory lock and never unlocks it (it counts on the connection closing); on a
   * pooled connection the lock would outlive start-up and time out every later process's start.
   */
  openMigrationAdapter(): Promise<{ adapterFactory: SqlMigrationAwareDriverAdapterFactory; close(): Promise<void> }>;
  /** Runs `fn` with one connection held for its duration (advisory locks live on a connection). */
  withConnection<T>(fn: (query: (sql: string, params?: unknown[]) => Promise<unknown[]>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Query parameters whose value is a secret. pg-connection-string hands every parameter to the
 * driver, which takes `password` as the password; `sslpassword` is libpq's passphrase for the
 * client key. (`sslkey`, `sslcert` and `sslrootcert` name files: their paths are shown.)
 */
const SECRET_PARAMETERS = new Set(['password', 'sslpassword']);

/**
 * libpq's form for a Unix socket leaves the URL's host empty and names the socket's directory in
 * `?host=` (`postgresql://drydock@/drydock?host=/run/postgresql`), which pg understands and the
 * WHATWG URL parser refuses ("Invalid URL"). Such a URL is read with this stand-in host, which
 * `databaseUrlText` takes out again: the `.invalid` top-level domain is reserved, no host has it.
 */
const STAND_IN_HOST = 'unix-socket.invalid';
const EMPTY_HOST = /^([a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?)(?=[/?#]|$)/i;

/** The database URL parsed, also in libpq's Unix-socket form; throws on one that is not a URL. */
function parseDatabaseUrl(url: string): URL {
  const before = EMPTY_HOST.exec(url)?.[1];
  return new URL(before === undefined ? url : `${before}${STAND_IN_HOST}${url.slice(before.length)}`);
}

/** A URL of parseDatabaseUrl as it was written, with an empty host again if it had one. */
function databaseUrlText(parsed: URL): string {
  return parsed.hostname === STAND_IN_HOST ? parsed.toString().replace(STAND_IN_HOST, '') : parsed.toString();
}

/** The URL with its passwords masked: the one before the host and any in the query string. */
export function redactUrl(url: string): string {
  try {
    const parsed = parseDatabaseUrl(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.search) {
      // Each parameter as it was written, but a secret's value: the driver decodes the names too.
      parsed.search = parsed.search
        .slice(1)
        .split('&')
        .map((pair) => {
          const name = [...new URLSearchParams(pair).keys()][0] ?? '';
          return SECRET_PARAMETERS.has(name.toLowerCase()) ? `${pair.split('=', 1)[0]}=***` : pair;
        })
        .join('&');
    }
    return databaseUrlText(parsed);
  } catch {
    return '(unparseable URL)';
  }
}

/** The URL's `?schema=` (Prisma's parameter), if it has one. */
export function schemaFromUrl(url: string): string | undefined {
  try {
    return parseDatabaseUrl(url).searchParams.get('schema') ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * For every PostgreSQL pool of a process: connections stay open once opened (pg's pool closes them
 * after 10 s idle by default). Leases come in bursts after quiet spells, and each reopened
 * connection costs the burst's first requests a connection set-up and the planning of every
 * prepared statement again.
 */
export const KEPT_OPEN = { idleTimeoutMillis: 0 } as const;

function openPostgres(options: DatabaseOptions & { url: string }): Database {
  // adapter-pg ignores Prisma's `?schema=`; honour it, since users carry it over from Prisma 6.
  const schema = options.schema ?? schemaFromUrl(options.url);
  const poolConfig = {
    connectionString: options.url,
    // The schema engine and raw SQL resolve unqualified names through search_path. JIT off: every
    // statement here is short, and once a large pool's allocation read passed the JIT cost
    // threshold, compiling it took 20 times as long as running it.
    options: ['-c jit=off', ...(schema ? [`-c search_path="${schema}"`] : [])].join(' '),
  };
  const pool = new pg.Pool({ ...poolConfig, ...KEPT_OPEN, max: options.poolSize ?? 10 });
  // An idle client losing its connection (database restart) must not crash the process; the pool
  // opens a new one when it next needs it.
  const lost = (what: string) => (error: Error) => {
    if (options.logger) options.logger.warn(`${what} lost: ${error.message}`);
    else console.error(`[db] ${what} lost: ${error.message}`);
  };
  pool.on('error', lost('idle database connection'));
  const adapterFactory = new PrismaPg(pool, schema ? { schema } : undefined);
  const prisma = new PrismaClient({ adapter: adapterFactory });
  return {
    kind: 'postgresql',
    url: options.url,
    location: redactUrl(options.url) + (schema ? ` (schema ${schema})` : ''),
    schema,
    prisma,
    exclusive: undefined,
    adapterFactory,
    async openMigrationAdapter() {
      // One connection, so that the engine's lock and its unlock-by-closing land on the same one.
      const own = new pg.Pool({ ...poolConfig, max: 1 });
      own.on('error', lost('migration database connection'));
      return { adapterFactory: new PrismaPg(own, schema ? { schema } : undefined), close: () => own.end() };
    },
    async withConnection(fn) {
      const client = await pool.connect();
      try {
        return await fn(async (sql, params) => (await client.query(sql, params)).rows);
      } finally {
        client.release();
      }
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  const inMemory = options.dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(options.dataDir, { recursive: true });
  // PGlite has no guard of its own against a second process on the same files: each would keep
  // its own view and lose the other's writes (data-dir-lock.ts). In memory there is nothing to share.
  const lock = inMemory ? undefined : await lockDataDir(options.dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(
      options.dataDir,
      inMemory && options.initialData ? { loadDataDir: options.initialData } : undefined,
    );
  } catch (error) {
    await lock?.release();
    throw error;
  }
  const adapterFactory = new PrismaPGlite(client) as unknown as SqlMigrationAwareDriverAdapterFactory;
  const prisma = new PrismaClient({ adapter: adapterFactory });
  return {
    kind: 'pglite',
    url: undefined,
    location: options.dataDir,
    schema: undefined,
    prisma,
    embedded: client,
    exclusive: { holder: randomBytes(6).toString('hex') },
    adapterFactory,
    // PGlite is one connection in this process: no other process can be waiting on its locks.
    async openMigrationAdapter() {
      return { adapterFactory, close: async () => {} };
    },
    async withConnection(fn) {
      return fn(async (sql, params) => (await client.query(sql, params)).rows);
    },
    async close() {
      try {
        await prisma.$disconnect();
        await client.close();
      } finally {
        await lock?.release();
      }
    },
  };
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url ? openPostgres({ ...options, url: options.url }) : openPglite(options);
}
