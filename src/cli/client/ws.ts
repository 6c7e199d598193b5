import type { Client } from 'graphql-ws';
import type { TypedDocumentString } from '../../generated/graphql/graphql.js';
import { CliError, ExitCode } from '../errors.js';
import { endpoint, type Connection } from './http.js';

export interface Subscriber<T> {
  next(value: T): void;
  error(error: CliError): void;
  complete(): void;
}

/** graphql-ws closes with 4403 when the connection's token is refused. */
const FORBIDDEN = 4403;

/**
 * Loaded on first use: graphql-ws and ws are most of what the CLI would otherwise load before
 * answering `--help` or a one-shot query.
 */
export async function subscriptionClient(connection: Connection, { retry = true } = {}): Promise<Client> {
  const [{ createClient }, { default: WebSocket }] = await Promise.all([import('graphql-ws'), import('ws')]);
  return createClient({
    url: endpoint(connection.server).replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    connectionParams: connection.token ? { authorization: `Bearer ${connection.token}` } : {},
    // A dropped connection is retried; callers resume from their last cursor, so nothing is lost.
    retryAttempts: retry ? 5 : 0,
    shouldRetry: (event) => !isCloseEvent(event) || event.code !== FORBIDDEN,
  });
}

/** Subscribes with a generated document; returns the function that unsubscribes. */
export function subscribe<TResult, TVariables>(
  client: Client,
  connection: Connection,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  subscriber: Subscriber<TResult>,
): () => void {
  return client.subscribe<TResult>(
    { query: document.toString(), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors?.length) subscriber.error(new CliError(result.errors.map((e) => e.message).join('; ')));
        else if (result.data) subscriber.next(result.data);
      },
      error: (error: unknown) => subscriber.error(subscriptionError(connection, error)),
      complete: () => subscriber.complete(),
    },
  );
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && typeof value.code === 'number';
}

function subscriptionError(connection: Connection, error: unknown): CliError {
  if (Array.isArray(error)) return new CliError(error.map((e: { message: string }) => e.message).join('; '));
  if (isCloseEvent(error)) {
    if (error.code === FORBIDDEN) {
      return new CliError(
        'the server refused the token for subscriptions (check --token or DRYDOCK_TOKEN)',
        ExitCode.unauthenticated,
      );
    }
    return new CliError(
      `the subscription to ${connection.server} closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`,
      ExitCode.unreachable,
    );
  }
  return new CliError(
    `lost the subscription to ${connection.server}: ${error instanceof Error ? error.message : String(error)}`,
    ExitCode.unreachable,
  );
}
