import type { TypedDocumentString } from '../../generated/graphql/graphql.js';
import { CliError, ExitCode } from '../errors.js';

export interface Connection {
  server: string;
  token: string | undefined;
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** The GraphQL endpoint of a server given by its base URL (or already by its endpoint). */
export function endpoint(server: string): string {
  const url = new URL(server);
  if (!url.pathname.endsWith('/graphql')) url.pathname = url.pathname.replace(/\/?$/, '/graphql');
  return url.toString();
}

export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Load-shedding refusals: the server answered before running anything, so sending again is safe. */
const SHED_CODES = new Set(['OVERLOADED', 'TOO_MANY_IN_FLIGHT']);
/** How long a command keeps sending a shed request again before it gives up and says so. */
export const SHED_PATIENCE_MS = 30_000;

/**
 * Runs one generated operation over HTTP; transport and GraphQL errors become CliErrors that say
 * what to do. A server shedding load (503 or 429 with Retry-After) is asked again after the time it
 * gives, for up to SHED_PATIENCE_MS: a CI job's `drydock lease` should wait out a busy moment, not
 * fail on it.
 */
export async function execute<TResult, TVariables>(
  connection: Connection,
  document: TypedDocumentString<TResult, TVariables>,
  variables?: TVariables,
): Promise<TResult> {
  const giveUpAt = Date.now() + SHED_PATIENCE_MS;
  for (;;) {
    const { response, text } = await send(connection, document, variables);
    const retryAfterMs = shedRetryMs(response, text);
    if (retryAfterMs === null || Date.now() + retryAfterMs > giveUpAt)
      return decode<TResult>(connection, response, text);
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
  }
}

async function send<TResult, TVariables>(
  connection: Connection,
  document: TypedDocumentString<TResult, TVariables>,
  variables?: TVariables,
): Promise<{ response: Response; text: string }> {
  try {
    const response = await fetch(endpoint(connection.server), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...authorizationHeader(connection.token),
      },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
      signal: AbortSignal.timeout(30_000),
    });
    return { response, text: await response.text() };
  } catch (error) {
    throw unreachable(connection.server, error);
  }
}

/** The wait a load-shedding refusal asks for, in ms; null: not such a refusal. */
function shedRetryMs(response: Response, text: string): number | null {
  if (response.status !== 503 && response.status !== 429) return null;
  try {
    const code = (JSON.parse(text) as GraphQLResponse<unknown>).errors?.[0]?.extensions?.code;
    if (code === undefined || !SHED_CODES.has(code)) return null;
  } catch {
    return null;
  }
  const seconds = Number(response.headers.get('retry-after') ?? 1);
  return (Number.isFinite(seconds) && seconds >= 0 ? seconds : 1) * 1_000;
}

function decode<TResult>(connection: Connection, response: Response, text: string): TResult {
  let body: GraphQLResponse<TResult>;
  try {
    body = JSON.parse(text) as GraphQLResponse<TResult>;
  } catch {
    throw new CliError(
      `the server at ${connection.server} answered HTTP ${response.status} with something that is not GraphQL; is --server right?`,
      ExitCode.unreachable,
    );
  }
  const codes = body.errors?.map((e) => e.extensions?.code) ?? [];
  if (response.status === 401 || codes.includes('UNAUTHENTICATED')) {
    throw new CliError(`${messages(body)} (check --token or DRYDOCK_TOKEN)`, ExitCode.unauthenticated);
  }
  if (body.errors?.length || !body.data) {
    throw new CliError(`the server refused the request: ${messages(body) || `HTTP ${response.status}`}`);
  }
  return body.data;
}

function messages(body: GraphQLResponse<unknown>): string {
  return (body.errors ?? []).map((e) => e.message).join('; ');
}

export function unreachable(server: string, error: unknown): CliError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why =
    error instanceof Error && error.name === 'TimeoutError'
      ? 'no answer within 30 s'
      : (cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)));
  return new CliError(
    `cannot reach the Drydock server at ${server} (${why}); is it running? Point --server or DRYDOCK_URL at it.`,
    ExitCode.unreachable,
  );
}
