import type { Server } from 'node:http';
import { useServer } from 'graphql-ws/use/ws';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';
import { visibilityKey } from '../access/actor.js';
import { isRefusal, principalKey, refusalError, type Admission } from './admission.js';
import { Cohorts, mayShare, type SendSerialized } from './cohorts.js';
import { requestToken, tooManyFailuresMessage } from './context.js';
import { nodeHeaders, type HeaderOf } from './origin.js';
import { recordServerEnd } from './operation-log.js';
import type { OpenSessions, SessionToken } from './sessions.js';

/** The close code for a subscriber that cannot keep up (documented in docs/operations.md). */
export const SLOW_CONSUMER_CLOSE_CODE = 4008;
/** The close code for a connection whose address failed too many authentications (HTTP's 429). */
export const TOO_MANY_FAILURES_CLOSE_CODE = 4429;

/**
 * Past `maxBufferedBytes` of unsent data the socket is closed: the client reads slower than its
 * events come, and waiting for it would let this process's memory grow without bound. Once
 * closing, the socket takes no more data, so what it holds stays bounded.
 */
function closeWhenTooSlow(socket: WebSocket, maxBufferedBytes: number, onClosed: () => void): void {
  const send = socket.send.bind(socket) as (data: unknown, cb?: (error?: Error) => void) => void;
  socket.send = ((data: unknown, ...rest: unknown[]) => {
    send(data, ...(rest as []));
    if (socket.readyState === socket.OPEN && socket.bufferedAmount > maxBufferedBytes) {
      socket.close(SLOW_CONSUMER_CLOSE_CODE, `Too slow: more than ${maxBufferedBytes} bytes waiting to be sent`);
      onClosed();
    }
  }) as typeof socket.send;
}

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

/** The close code ws sends for a message larger than its `maxPayload`, RFC 6455's "Message Too Big". */
export const MESSAGE_TOO_BIG_CLOSE_CODE = 1009;

/**
 * A frame ws refuses (a message past `maxPayload`, or one breaking the protocol) closes the socket
 * with the protocol's code, 1009 for one too big without saying why; ws then emits an `error`,
 * which graphql-ws printed to stderr as a stack trace, around the logger. Here the close says
 * what the limit is and the error is one log line. Called once graphql-ws has its listeners.
 */
function reportRefusedFrames(socket: WebSocket, maxPayload: number, logger: Logger): void {
  let closedWith: number | undefined;
  const close = socket.close.bind(socket);
  socket.close = ((code?: number, reason?: string | Buffer) => {
    closedWith ??= code;
    const why =
      code === MESSAGE_TOO_BIG_CLOSE_CODE && !reason ? `Message too big: more than ${maxPayload} bytes` : reason;
    close(code, why);
  }) as typeof socket.close;
  for (const listener of socket.listeners('error')) socket.off('error', listener as (error: Error) => void);
  // Always listened to: an error event nobody hears would end the process.
  socket.on('error', (error: Error & { code?: string }) => {
    logger.line('warn', 'graphql-ws message refused', {
      closeCode: closedWith,
      error: error.code ?? error.name,
      detail: error.message,
    });
  });
}

type Enveloped = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
  /** The cohort a shareable subscription belongs to. */
  cohort: string | null;
  /** Writes a cohort's serialized result to this subscriber's socket as its `next` message. */
  send: SendSerialized | undefined;
};

/**
 * A `next` message framed around a payload serialized once for a whole cohort: graphql-ws would
 * serialize the same result again for every socket, as each message carries its operation's id.
 */
function nextMessageSender(socket: WebSocket, id: string): SendSerialized {
  const head = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  return (payload) => {
    if (socket.readyState === socket.OPEN) socket.send(`${head}${payload}}`);
  };
}

/**
 * graphql-ws on the same port and path as HTTP, running every operation through Yoga's envelop so
 * that the same plugins (limits, masking, context) apply on both transports.
 */
export function attachWebSocketServer(
  httpServer: Server,
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>,
  path: string,
  maxPayload: number,
  /**
   * Refusing here closes the socket before any operation runs: with 4403, or with 4429 when the
   * refusal says when to retry (too many failed authentications from the client's address).
   */
  acceptConnection: (
    connectionParams: Readonly<Record<string, unknown>> | undefined,
    header: HeaderOf,
    address: string | undefined,
  ) => Promise<{ token: SessionToken | null } | { refused: string; retryAfterSeconds?: number }>,
  shedding: { admission: Admission; maxBufferedBytes: number; onSlowConsumer: () => void },
  /** Each socket is held by its token here: revoked or expired, the socket closes with 4403. */
  sessions: OpenSessions,
  logger: Logger,
) {
  const wsServer = new WebSocketServer({ server: httpServer, path, maxPayload });
  // Registered before graphql-ws's own handler, so it sees each message first.
  wsServer.on('connection', (socket) => {
    refuseServerOnlyMessages(socket);
    closeWhenTooSlow(socket, shedding.maxBufferedBytes, shedding.onSlowConsumer);
  });
  const { admission } = shedding;
  const cohorts = new Cohorts();
  const keyOf = (connectionParams: Readonly<Record<string, unknown>> | undefined) => {
    const token = requestToken(connectionParams ? { connectionParams } : {});
    return principalKey(token);
  };
  const disposable = useServer(
    {
      onConnect: async (ctx) => {
        const { socket: connection } = ctx.extra.request;
        const accepted = await acceptConnection(
          ctx.connectionParams,
          nodeHeaders(ctx.extra.request.headers),
          connection.remoteAddress,
        );
        // Closed first with its own code: graphql-ws's own close (4403) then finds it closing.
        if ('retryAfterSeconds' in accepted && accepted.retryAfterSeconds !== undefined)
          ctx.extra.socket.close(TOO_MANY_FAILURES_CLOSE_CODE, tooManyFailuresMessage(accepted.retryAfterSeconds));
        if ('token' in accepted) {
          const socket = ctx.extra.socket;
          const release = sessions.hold(accepted.token, (why) => {
            recordServerEnd(socket, why.code);
            socket.close(why.code === 'SHUTTING_DOWN' ? 1001 : 4403, why.message);
          });
          socket.once('close', release);
        }
        // graphql-ws keeps the upgrade request for the socket's whole life, with its stream state
        // and raw headers; operations need only its headers, URL and the client's address (the
        // token is in connectionParams).
        const { headers, url, method } = ctx.extra.request;
        const socket = { remoteAddress: connection.remoteAddress };
        (ctx.extra as { request: unknown }).request = { headers, url, method, socket };
        return 'token' in accepted;
      },
      // A query or mutation holds a slot while it runs, as over HTTP.
      execute: async (args) => {
        const ticket = admission.enter(keyOf((args.contextValue as { connectionParams?: never }).connectionParams));
        if (isRefusal(ticket))
          return { errors: [new GraphQLError(refusalError(ticket).message, refusalError(ticket))] };
        try {
          return (await (args.rootValue as Enveloped).execute(args)) as never;
        } finally {
          ticket.release();
        }
      },
      subscribe: async (args) => {
        const root = args.rootValue as Enveloped;
        if (!root.cohort) return root.subscribe(args) as never;
        const member = await cohorts.join(root.cohort, () => root.subscribe(args) as never, root.send);
        // graphql-ws keeps these arguments for as long as the subscription lasts, but a member
        // needs none of them once it is in its cohort (the execution holds its own): its context
        // (authentication, loaders, the upgrade request) would stay alive with every idle socket.
        Object.assign(args, { contextValue: null, rootValue: null, variableValues: null });
        return member as never;
      },
      onSubscribe: async (ctx, id, payload) => {
        // Refused before anything is parsed or authenticated: that is the work being shed.
        const refusal = admission.check(keyOf(ctx.connectionParams));
        if (refusal) return [new GraphQLError(refusalError(refusal).message, refusalError(refusal))];
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        });
        // A bad operation (syntax, limits, authentication, rate) is an error message for that
        // operation; thrown, graphql-ws would close the whole socket with 4500.
        try {
          const document = parse(payload.query);
          const contextValue = await contextFactory();
          // Same document, variables and visibility: the same results, so one execution for all.
          const cohort = mayShare(document, payload.operationName, payload.variables)
            ? JSON.stringify([
                visibilityKey((contextValue as unknown as GraphQLContext).actor),
                payload.query,
                payload.operationName,
                payload.variables,
              ])
            : null;
          const args = {
            schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue,
            rootValue: {
              execute,
              subscribe,
              cohort,
              send: cohort ? nextMessageSender(ctx.extra.socket, id) : undefined,
            },
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
  // After graphql-ws's own listener, which it replaces.
  wsServer.on('connection', (socket) => reportRefusedFrames(socket, maxPayload, logger));
  // ws re-emits the HTTP server's errors as the WebSocket server's, and graphql-ws prints each as
  // an 11-line plain-text dump on stderr: a port already in use came out that way before the
  // service's own JSON line. An error before the HTTP server listens is its listen failing, which
  // start-up reports (main.ts); later ones still go to graphql-ws, which closes the sockets.
  const graphqlWsOnError = wsServer.listeners('error') as ((error: Error) => void)[];
  wsServer.removeAllListeners('error');
  wsServer.on('error', (error: Error) => {
    if (!httpServer.listening) return;
    for (const listener of graphqlWsOnError) listener.call(wsServer, error);
  });
  return {
    wsServer,
    cohorts,
    /** Tells every client the server is going away (1001) and waits for the sockets to close. */
    async close(): Promise<void> {
      for (const client of wsServer.clients) client.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
