import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLSchema } from 'graphql';
import { createYoga } from 'graphql-yoga';
import type { Database } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { createHealthHandler } from './health.js';
import { attachWebSocketServer } from './websocket.js';

export const GRAPHQL_PATH = '/graphql';

export interface HttpServerOptions {
  db: Database;
  schema: GraphQLSchema;
  logger: Logger;
  shutdownTimeoutMs: number;
}

export interface RunningServer {
  server: Server;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), closes sockets. */
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions, port: number, host: string): Promise<RunningServer> {
  const { db, schema, logger } = options;
  let shuttingDown = false;

  const yoga = createYoga<Record<string, unknown>, GraphQLContext>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: { title: 'Drydock', subscriptionsProtocol: 'WS' },
    logging: {
      debug: (...args) => logger.debug(...args),
      info: (...args) => logger.info(...args),
      warn: (...args) => logger.warn(...args),
      error: (...args) => logger.error(...args),
    },
    // Unexpected errors reach clients as "Unexpected error." and the server log keeps the detail.
    maskedErrors: true,
    context: (): GraphQLContext => ({ db }),
  });

  const health = createHealthHandler(db, () => shuttingDown);
  const server = createServer((req, res) => {
    health(req, res)
      .then((handled) => (handled ? undefined : yoga(req, res)))
      .catch((error: unknown) => {
        logger.error('request failed', error);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      });
  });
  const ws = attachWebSocketServer(server, yoga, GRAPHQL_PATH);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    async close() {
      shuttingDown = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await ws.close();
      const timer = setTimeout(() => {
        logger.warn(
          `in-flight requests still running after ${options.shutdownTimeoutMs} ms; closing their connections`,
        );
        server.closeAllConnections();
      }, options.shutdownTimeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
