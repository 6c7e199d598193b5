import type { ServerResponse } from 'node:http';
import { createGraphQLError } from 'graphql-yoga';
import { createVisibility } from '../access/visibility.js';
import { authenticate, localAdmin } from '../auth/authenticate.js';
import { tokenFromHeader } from '../auth/tokens.js';
import type { Database } from '../db/database.js';
import type { DrydockPubSub } from '../events/pubsub.js';
import type { Services } from '../services/index.js';
import type { GraphQLContext } from '../schema/context.js';
import { refusedFor } from './operation-log.js';
import { anonymousRefusal, fetchHeaders, nodeHeaders, type HeaderOf } from './origin.js';
import type { RateLimiter } from './rate-limiter.js';
import type { OpenSessions, SessionEnd, SessionToken } from './sessions.js';
import type { StreamingResponses } from './streams.js';

export interface ContextOptions {
  db: Database;
  services: Services;
  pubsub: DrydockPubSub;
  /** What an anonymous request becomes: the local admin (loopback-only servers), or refused. */
  anonymous: 'local-admin' | 'reject';
  rateLimiter: RateLimiter;
  /** SSE streams are held here, to end when their token is revoked or expires, and at shutdown. */
  sessions: OpenSessions;
  /** Tells which HTTP responses turn into streams. */
  streams: StreamingResponses;
}

/** The token of an HTTP request (Authorization header) or a graphql-ws connection (connectionParams). */
export function requestToken(initial: {
  request?: Request;
  connectionParams?: Readonly<Record<string, unknown>>;
}): string | null {
  const header = initial.request?.headers.get('authorization');
  if (header) return tokenFromHeader(header) ?? '';
  const params = initial.connectionParams;
  const fromParams = params?.['authorization'] ?? params?.['Authorization'] ?? params?.['token'];
  if (typeof fromParams !== 'string') return null;
  return tokenFromHeader(fromParams) ?? fromParams;
}

function unauthenticated(message: string) {
  return createGraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

/** Why a graphql-ws connection was refused: a token that is not valid, or anonymity not allowed. */
export type ConnectionRefusal = 'UNAUTHENTICATED' | 'FORBIDDEN';

/**
 * Whether a graphql-ws connection may open: its token, if any, must be valid, and anonymity
 * allowed, which a browser's socket from another web page never is (origin.ts). Open, it is
 * held by its token (null: anonymous) until the token ends.
 */
export function createConnectionGate(options: Pick<ContextOptions, 'db' | 'anonymous'>) {
  return async (
    connectionParams: Readonly<Record<string, unknown>> | undefined,
    header: HeaderOf,
  ): Promise<{ token: SessionToken | null } | { refused: ConnectionRefusal }> => {
    const result = await authenticate(options.db, requestToken(connectionParams ? { connectionParams } : {}));
    if (result.kind === 'token') return { token: result.actor.token ?? null };
    if (result.kind !== 'anonymous' || options.anonymous !== 'local-admin') return { refused: 'UNAUTHENTICATED' };
    return anonymousRefusal(header) === null ? { token: null } : { refused: 'FORBIDDEN' };
  };
}

/**
 * Ends an SSE stream with a last event that says why, as a GraphQL error, then `complete`. Yoga
 * may still be writing the stream's next event: after the end that write fails, harmlessly, as
 * it would for a client that went away.
 */
function endEventStream(res: ServerResponse, why: SessionEnd): void {
  res.on('error', () => {});
  if (!res.headersSent) {
    res.destroy();
    return;
  }
  const error = JSON.stringify({ errors: [{ message: why.message, extensions: { code: why.code } }] });
  res.end(`event: next\ndata: ${error}\n\nevent: complete\ndata:\n\n`);
}

/** The headers of an HTTP request (Yoga's Request) or of a graphql-ws socket's upgrade request. */
function headersOf(initial: ContextInitial): HeaderOf {
  if (initial.request) return fetchHeaders(initial.request.headers);
  return nodeHeaders(initial.req?.headers ?? {});
}

type ContextInitial = {
  request?: Request;
  /** The response of an HTTP request (Yoga's server context); absent over graphql-ws. */
  res?: ServerResponse;
  req?: { headers: Readonly<Record<string, string | string[] | undefined>> };
  connectionParams?: Readonly<Record<string, unknown>>;
};

export function createContextFactory(options: ContextOptions) {
  // The local admin never changes while the process runs: look it up once.
  let localActor: ReturnType<typeof localAdmin> | undefined;
  return async (initial: ContextInitial): Promise<GraphQLContext> => {
    const result = await authenticate(options.db, requestToken(initial));
    if (result.kind === 'rejected') throw unauthenticated(`Not authenticated: ${result.reason}.`);
    if (result.kind === 'anonymous' && options.anonymous === 'reject') {
      throw unauthenticated('Not authenticated: send an API token as "Authorization: Bearer <token>".');
    }
    const refusal = result.kind === 'anonymous' ? anonymousRefusal(headersOf(initial)) : null;
    if (refusal) {
      throw createGraphQLError(`Forbidden: ${refusal}.`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    }
    const actor = result.kind === 'token' ? result.actor : await (localActor ??= localAdmin(options.db));
    const retryAfterSeconds = options.rateLimiter.tryTake(actor.principalId);
    if (retryAfterSeconds > 0) {
      throw refusedFor(
        actor.name,
        createGraphQLError('Too many requests for this token; slow down and retry.', {
          extensions: {
            code: 'RATE_LIMITED',
            retryAfterSeconds,
            http: { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } },
          },
        }),
      );
    }
    const res = initial.res;
    if (res) {
      // A response that streams (a subscription over SSE) is held by its token until it ends.
      options.streams.whenStreaming(res, () => {
        const release = options.sessions.hold(actor.token ?? null, (why) => endEventStream(res, why));
        res.once('close', release);
      });
    }
    const access = createVisibility(options.db, actor);
    return { db: options.db, services: options.services, pubsub: options.pubsub, actor, access };
  };
}
