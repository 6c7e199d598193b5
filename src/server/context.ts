import type { ServerResponse } from 'node:http';
import { createGraphQLError } from 'graphql-yoga';
import { createVisibility } from '../access/visibility.js';
import { authenticate, localAdmin, type Authentication } from '../auth/authenticate.js';
import { tokenFromHeader } from '../auth/tokens.js';
import type { Database } from '../db/database.js';
import type { DrydockPubSub } from '../events/pubsub.js';
import type { Services } from '../services/index.js';
import type { GraphQLContext } from '../schema/context.js';
import { refusedFor } from './operation-log.js';
import { anonymousRefusal, fetchHeaders, nodeHeaders, type HeaderOf } from './origin.js';
import { clientAddressKey, type RateLimiter } from './rate-limiter.js';
import type { OpenSessions, SessionToken } from './sessions.js';
import { streamEnder, type StreamingResponses } from './streams.js';

export interface ContextOptions {
  db: Database;
  services: Services;
  pubsub: DrydockPubSub;
  /** What an anonymous request becomes: the local admin (loopback-only servers), or refused. */
  anonymous: 'local-admin' | 'reject';
  rateLimiter: RateLimiter;
  /** Failed authentications per client address (clientAddressKey), counted apart from requests. */
  authFailures: RateLimiter<string>;
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

/** What a client that failed too many authentications is told, over HTTP and graphql-ws alike. */
export const tooManyFailuresMessage = (retryAfterSeconds: number) =>
  `Too many failed authentications from this address; retry in ${retryAfterSeconds} s.`;

/**
 * Authenticates `token` sent from `address`, unless that address failed too many authentications
 * lately: then no token from it is looked at, a valid one included, until that debt is waited off
 * (looked at, a guess that is right would still tell itself from one that is wrong). Only failures
 * count, in a bucket of their own per address, so that a client's valid requests never spend it
 * and a valid token is held up only while its address keeps failing.
 */
async function authenticateFrom(
  options: Pick<ContextOptions, 'db' | 'authFailures'>,
  token: string | null,
  address: string | undefined,
): Promise<Authentication | { kind: 'throttled'; retryAfterSeconds: number }> {
  if (token === null) return authenticate(options.db, null);
  const key = clientAddressKey(address);
  const retryAfterSeconds = options.authFailures.waitSeconds(key);
  if (retryAfterSeconds > 0) return { kind: 'throttled', retryAfterSeconds };
  const result = await authenticate(options.db, token);
  if (result.kind === 'rejected') options.authFailures.charge(key);
  return result;
}

/**
 * Why a graphql-ws connection was refused: a token that is not valid, anonymity not allowed, or
 * too many failed authentications from its address.
 */
export type ConnectionRefusal = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'RATE_LIMITED';

/**
 * Whether a graphql-ws connection may open: its token, if any, must be valid, and anonymity
 * allowed, which a browser's socket from another web page never is (origin.ts). Open, it is
 * held by its token (null: anonymous) until the token ends.
 */
export function createConnectionGate(options: Pick<ContextOptions, 'db' | 'anonymous' | 'authFailures'>) {
  return async (
    connectionParams: Readonly<Record<string, unknown>> | undefined,
    header: HeaderOf,
    address: string | undefined,
  ): Promise<{ token: SessionToken | null } | { refused: ConnectionRefusal; retryAfterSeconds?: number }> => {
    const token = requestToken(connectionParams ? { connectionParams } : {});
    const result = await authenticateFrom(options, token, address);
    if (result.kind === 'throttled') return { refused: 'RATE_LIMITED', retryAfterSeconds: result.retryAfterSeconds };
    if (result.kind === 'token') return { token: result.actor.token ?? null };
    if (result.kind !== 'anonymous' || options.anonymous !== 'local-admin') return { refused: 'UNAUTHENTICATED' };
    return anonymousRefusal(header) === null ? { token: null } : { refused: 'FORBIDDEN' };
  };
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
  /** Node's request over HTTP; over graphql-ws, what the socket kept of its upgrade request. */
  req?: {
    headers: Readonly<Record<string, string | string[] | undefined>>;
    socket?: { remoteAddress?: string | undefined };
  };
  connectionParams?: Readonly<Record<string, unknown>>;
};

export function createContextFactory(options: ContextOptions) {
  // The local admin never changes while the process runs: look it up once.
  let localActor: ReturnType<typeof localAdmin> | undefined;
  return async (initial: ContextInitial): Promise<GraphQLContext> => {
    const result = await authenticateFrom(options, requestToken(initial), initial.req?.socket?.remoteAddress);
    if (result.kind === 'throttled') {
      const { retryAfterSeconds } = result;
      throw createGraphQLError(tooManyFailuresMessage(retryAfterSeconds), {
        extensions: {
          code: 'RATE_LIMITED',
          retryAfterSeconds,
          http: { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } },
        },
      });
    }
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
      options.streams.whenStreaming(res, (format) => {
        const release = options.sessions.hold(actor.token ?? null, streamEnder(res, format));
        res.once('close', release);
      });
    }
    const access = createVisibility(options.db, actor);
    return { db: options.db, services: options.services, pubsub: options.pubsub, actor, access };
  };
}
