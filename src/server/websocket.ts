import type { Server } from 'node:http';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import type { GraphQLContext } from '../schema/context.js';

// Messages only a server may send. graphql-ws treats one from a client as an internal error (4500);
// it is the client's mistake, so it gets 4400 like any other malformed message.
const serverOnlyTypes = new Set(['connection_ack', 'next', 'error']);

function refuseServerOnlyMessages(socket: WebSocket): void {
  const emit = socket.emit.bind(socket);
  socket.emit = ((event: string, ...args: unknown[]) => {
    if (event === 'message') {
      let type: unknown;
      try {
        type = (JSON.parse(String(args[0])) as { type?: unknown }).type;
      } catch {
        type = undefined;
      }
      if (typeof type === 'string' && serverOnlyTypes.has(type)) {
        socket.close(4400, `Invalid message received: a client may not send "${type}"`);
        return false;
      }
    }
    return emit(event, ...args);
  }) as typeof socket.emit;
}

type Enveloped = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

/**
 * graphql-ws on the same port and path as HTTP, running every operation through Yoga's envelop so
 * that the same plugins (limits, masking, context) apply on both transports.
 */
export function attachWebSocketServer(
  httpServer: Server,
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>,
  path: string,
  maxPayload: number,
  /** Refusing here closes the socket with 4403 before any operation runs. */
  acceptConnection: (connectionParams: Readonly<Record<string, unknown>> | undefined) => Promise<boolean>,
) {
  const wsServer = new WebSocketServer({ server: httpServer, path, maxPayload });
  // Registered before graphql-ws's own handler, so it sees each message first.
  wsServer.on('connection', refuseServerOnlyMessages);
  const disposable = useServer(
    {
      onConnect: (ctx) => acceptConnection(ctx.connectionParams),
      execute: (args) => (args.rootValue as Enveloped).execute(args) as never,
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        });
        // A bad operation (syntax, limits, authentication, rate) is an error message for that
        // operation; thrown, graphql-ws would close the whole socket with 4500.
        try {
          const args = {
            schema,
            operationName: payload.operationName,
            document: parse(payload.query),
            variableValues: payload.variables,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe },
          };
          const errors = validate(args.schema, args.document);
          return errors.length > 0 ? errors : args;
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
      },
    },
    wsServer,
  );
  return {
    wsServer,
    /** Tells every client the server is going away (1001) and waits for the sockets to close. */
    async close(): Promise<void> {
      for (const client of wsServer.clients) client.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
