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

/** Runs one generated operation over HTTP; transport and GraphQL errors become CliErrors that say what to do. */
export async function execute<TResult, TVariables>(
  connection: Connection,
  document: TypedDocumentString<TResult, TVariables>,
  variables?: TVariables,
): Promise<TResult> {
  const url = endpoint(connection.server);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...authorizationHeader(connection.token),
      },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw unreachable(connection.server, error);
  }
  const text = await response.text();
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
