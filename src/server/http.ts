import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { GraphQLSchema } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { Database } from '../db/database.js';
import { projectRoot } from '../db/migrations-folder.js';
import type { DrydockPubSub } from '../events/pubsub.js';
import type { Services } from '../services/index.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { Admission, isRefusal, type Refusal, principalKey, refusalError } from './admission.js';
import { createProcessBound, type ProcessBoundOptions } from './process-bound.js';
import { createConnectionGate, createContextFactory } from './context.js';
import { createHealthHandler } from './health.js';
import type { NewerDatabaseWatch } from './newer-database.js';
import type { Metrics } from './metrics/index.js';
import { logRefusedConnections, operationLogPlugin } from './operation-log.js';
import { limitPlugins, type QueryLimits } from './limits.js';
import { RateLimiter } from './rate-limiter.js';
import { requestErrorCodes } from './request-errors.js';
import { createStaticHandler } from './static.js';
import { OpenSessions } from './sessions.js';
import { StreamingResponses } from './streams.js';
import { attachWebSocketServer } from './websocket.js';

export const GRAPHQL_PATH = '/graphql';
/** What a refused client is told to wait before it tries again. */
const RETRY_AFTER_SECONDS = 1;

const GRAPHIQL_EXAMPLE = `# Drydock: lease resources from blueprints, watch them live.
# Run "Leases" to list; "Candidates" is a dry run of a request.

query Leases {
  leases(first: 20) {
    edges { node { databaseId status resourceType blocker { message } resource { name attributes } } }
  }
}

query Candidates {
  leaseCandidates(input: { resourceType: "host" }) {
    ... on LeaseCandidatesPayload { wouldBeServed blueprints { blueprint { name } usable reason } }
    ... on Error { message }
  }
}

mutation RequestLease {
  requestLease(input: { resourceType: "host", ttlSeconds: 600 }) {
    ... on RequestLeasePayload { leases { id databaseId status } }
    ... on Error { message }
  }
}
`;

export interface HttpServerOptions {
  db: Database;
  services: Services;
  pubsub: DrydockPubSub;
  schema: GraphQLSchema;
  logger: Logger;
  /** Prometheus metrics at /metrics; none when undefined. */
  metrics: Metrics | undefined;
  /** OpenTelemetry's plugin when tracing is on. */
  tracing?: Plugin | undefined;
  shutdownTimeoutMs: number;
  /** What /readyz asks whether a newer build migrated the database. */
  migrations: NewerDatabaseWatch;
  anonymous: 'local-admin' | 'reject';
  /** Web origins whose pages may read the API's answers (CORS); every other origin gets no CORS headers. */
  corsOrigins: readonly string[];
  limits: QueryLimits;
  maxBodyBytes: number;
  /**
   * The listening socket's accept queue. libuv accepts one connection per turn of the event loop,
   * and a loaded process turns slowly: a burst of new connections waits in this queue, and past it
   * the kernel drops their SYNs, which clients retry after 1, 3 and 7 s or give up on (undici
   * after 10 s). Node's default (511) overflowed under a burst of new connections to a saturated
   * process; queued, they are admitted or refused when the process reaches them.
   */
  listenBacklog: number;
  rateLimitPerMinute: number;
  /** Failed authentications (unknown, revoked or expired tokens) per minute per client address. */
  authFailuresPerMinute: number;
  /** Work in flight in this process, in total (fixed or adaptive) and per principal, past which requests are refused. */
  shedding: ProcessBoundOptions;
  maxInFlightPerPrincipal: number;
  /** A WebSocket whose unsent data passes this is closed: a subscriber that cannot keep up. */
  wsMaxBufferedBytes: number;
}

export interface RunningServer {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes sockets. */
  close(): Promise<void>;
}

/**
 * Bodies are judged by their declared length before anything reads them, so an oversized upload
 * costs the server nothing; a body without a declared length is refused rather than streamed.
 */
function refuseBody(req: IncomingMessage, maxBytes: number): { status: number; code: string; message: string } | null {
  if (req.method === 'GET' || req.method === 'HEAD') return refuseQueryString(req.url ?? '');
  if (req.method === 'OPTIONS') return null;
  const length = req.headers['content-length'];
  if (length === undefined) {
    return req.headers['transfer-encoding']
      ? { status: 411, code: 'LENGTH_REQUIRED', message: 'Send a Content-Length header.' }
      : null;
  }
  if (Number(length) > maxBytes) {
    return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: `Request body is larger than ${maxBytes} bytes.` };
  }
  return null;
}

/** Yoga parses `variables` and `extensions` of a GET without catching: a bad one would be a 500. */
function refuseQueryString(url: string): { status: number; code: string; message: string } | null {
  const params = new URL(url, 'http://localhost').searchParams;
  for (const name of ['variables', 'extensions']) {
    const value = params.get(name);
    if (value === null || value === '') continue;
    try {
      JSON.parse(value);
    } catch {
      return { status: 400, code: 'BAD_REQUEST', message: `The ${name} parameter is not JSON.` };
    }
  }
  return null;
}

/**
 * The two refusals, serialized once: under overload most requests are refused, and a refusal must
 * cost next to nothing, or refusing becomes the work that overloads the process.
 */
const refusals = new Map(
  (['process', 'principal'] as const).map((scope) => {
    const refusal: Refusal = { scope, retryAfterSeconds: RETRY_AFTER_SECONDS };
    const body = Buffer.from(JSON.stringify({ errors: [refusalError(refusal)] }));
    const headers = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'retry-after': String(RETRY_AFTER_SECONDS),
    };
    return [scope, { status: scope === 'process' ? 503 : 429, headers, body }];
  }),
);

function refuse(res: ServerResponse, refusal: Refusal): void {
  const { status, headers, body } = refusals.get(refusal.scope)!;
  res.writeHead(status, headers);
  res.end(body);
}

/** Whether a request is GraphQL work, the only work that is shed: /metrics must answer most of all when the server is busy. */
function isGraphql(url: string | undefined): boolean {
  return (
    url !== undefined &&
    url.startsWith(GRAPHQL_PATH) &&
    (url.length === GRAPHQL_PATH.length || url[GRAPHQL_PATH.length] === '?')
  );
}

export async function startHttpServer(options: HttpServerOptions, port: number, host: string): Promise<RunningServer> {
  const { db, schema, logger } = options;
  let shuttingDown = false;

  const sessions = new OpenSessions(options.pubsub);
  const streams = new StreamingResponses();
  // One budget per address for HTTP and graphql-ws alike: switching transport buys no more tries.
  const authFailures = new RateLimiter<string>(options.authFailuresPerMinute);
  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: { title: 'Drydock', subscriptionsProtocol: 'WS', defaultQuery: GRAPHIQL_EXAMPLE },
    // The bundled GraphiQL: the page works where no CDN can be reached. Its module carries the
    // whole page, megabytes that V8 compiles on import, so it is loaded when the page is first
    // asked for rather than by every process that starts.
    renderGraphiQL: async (graphiqlOptions) =>
      (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiqlOptions),
    logging: {
      debug: (...args) => logger.debug(...args),
      info: (...args) => logger.info(...args),
      warn: (...args) => logger.warn(...args),
      error: (...args) => logger.error(...args),
    },
    // Unexpected errors reach clients as "Unexpected error." and the server log keeps the detail.
    maskedErrors: true,
    // The body's size is judged before Yoga sees the request (refuseBody: by its declared length,
    // which Node's parser never reads past). Yoga's own limit would pipe every body through a
    // counting stream, a cost on every request for a check already made.
    maxRequestBodySize: false,
    // Yoga's default allows every origin, with credentials: any web page could read the answers.
    cors: (request) => {
      const origin = request.headers.get('origin');
      return origin && options.corsOrigins.includes(origin) ? { origin: [origin], credentials: false } : false;
    },
    plugins: [
      streams.plugin(),
      // Before the log, which records the codes it gives.
      requestErrorCodes(),
      operationLogPlugin(logger),
      ...limitPlugins(options.limits),
      ...(options.metrics?.plugins ?? []),
      ...(options.tracing ? [options.tracing] : []),
    ],
    context: createContextFactory({
      db,
      services: options.services,
      pubsub: options.pubsub,
      anonymous: options.anonymous,
      rateLimiter: new RateLimiter(options.rateLimitPerMinute),
      authFailures,
      sessions,
      streams,
    }),
  });

  const processBound = createProcessBound(options.shedding, {
    limit: (limit) => options.metrics?.inFlightLimit.set(limit),
    lag: (lagMs) => options.metrics?.eventLoopLag.set(lagMs / 1_000),
  });
  const admission = new Admission(
    processBound.bound,
    options.maxInFlightPerPrincipal,
    {
      refused: (refusal) => options.metrics?.refused.inc({ scope: refusal.scope }),
      inFlight: (count) => options.metrics?.inFlight.set(count),
    },
    RETRY_AFTER_SECONDS,
  );
  /** Admits a GraphQL request for as long as its response is open, or answers the refusal at once. */
  const admit = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!isGraphql(req.url)) return true;
    const ticket = admission.enter(principalKey(req.headers.authorization));
    if (isRefusal(ticket)) {
      refuse(res, ticket);
      return false;
    }
    res.once('close', ticket.release);
    // A subscription over SSE is long-lived and mostly idle: it holds no slot once it streams.
    streams.whenStreaming(res, ticket.release);
    return true;
  };
  const health = createHealthHandler(db, () => shuttingDown, options.migrations);
  // The web playground, built at install; it serves only files that exist, so /graphql (GraphiQL)
  // and the health paths fall through.
  const page = createStaticHandler(join(projectRoot, 'web-playground', 'dist'));
  const server = createServer((req, res) => {
    // First of all, before the body, authentication or parsing: that is the work being shed.
    if (!admit(req, res)) return;
    const refusal = refuseBody(req, options.maxBodyBytes);
    if (refusal) {
      res.writeHead(refusal.status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] }));
      return;
    }
    health(req, res)
      .then((handled) => handled || page(req, res))
      .then((handled) => (handled ? undefined : yoga(req, res)))
      .catch((error: unknown) => {
        logger.error('request failed', error);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      });
  });
  // An idle keep-alive socket must outlive the client's own idle timeout (undici's is 4 s): when
  // the server closes first, a request the client sent on it meanwhile dies with ECONNRESET, which
  // a busy machine (late timers) makes likely with Node's default of 5 s.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const ws = attachWebSocketServer(
    server,
    yoga,
    GRAPHQL_PATH,
    options.maxBodyBytes,
    logRefusedConnections(createConnectionGate({ db, anonymous: options.anonymous, authFailures }), logger),
    {
      admission,
      maxBufferedBytes: options.wsMaxBufferedBytes,
      onSlowConsumer: () => options.metrics?.slowConsumersClosed.inc(),
    },
    sessions,
    logger,
  );
  options.metrics?.readCohorts(() => ws.cohorts.size);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: options.listenBacklog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  // Node counts a connection idle once its response has ended, bytes still queued for a slow
  // reader or not, and closing it then cuts the answer short (a stream ended at shutdown, its last
  // part written behind a full buffer). Idle connections are closed only while no ended response
  // is still flushing; one that is delays the close by no more than it takes the client to read.
  const responses = new Set<ServerResponse>();
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    responses.add(res);
    res.once('close', () => responses.delete(res));
  });
  const closeIdle = () => {
    for (const res of responses) if (res.writableEnded && !res.writableFinished) return;
    server.closeIdleConnections();
  };

  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    async close() {
      shuttingDown = true;
      processBound.stop();
      // Not http's own close: it closes idle connections at once, which is unsafe (see closeIdle).
      const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
      closeIdle();
      // A keep-alive connection busy now goes idle when its response ends, and would then stay
      // open until its keep-alive timeout, holding the close up: each is closed once idle.
      const idle = setInterval(closeIdle, 50);
      // Subscriptions (SSE streams, sockets) would keep the server open until the timeout.
      sessions.endAll({ code: 'SHUTTING_DOWN', message: 'The server is shutting down; reconnect to another.' });
      await ws.close();
      const timer = setTimeout(() => {
        logger.warn(
          `in-flight requests still running after ${options.shutdownTimeoutMs} ms; closing their connections`,
        );
        server.closeAllConnections();
      }, options.shutdownTimeoutMs);
      await closed;
      clearInterval(idle);
      clearTimeout(timer);
    },
  };
}
