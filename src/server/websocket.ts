import type { Server } from 'node:http';
import { useServer } from 'graphql-ws/use/ws';
import type { ExecutionArgs } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { GraphQLContext } from '../schema/context.js';

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
