import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from '../../src/generated/graphql/graphql.js';

// The page talks to the server it was served from: HTTP for queries and mutations, graphql-ws on
// the same /graphql path for subscriptions. A token is only needed off loopback; it is kept in
// localStorage so a reload keeps it.

const TOKEN_KEY = 'drydock.token';
const endpoint = new URL('/graphql', window.location.href);

export function savedToken(): string {
  return localStorage.getItem(TOKEN_KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  resetSubscriptions();
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';
const stateListeners = new Set<(state: ConnectionState) => void>();

export function onConnectionState(listener: (state: ConnectionState) => void): void {
  stateListeners.add(listener);
}

function announce(state: ConnectionState): void {
  for (const listener of stateListeners) listener(state);
}

let client: Client | undefined;

function subscriptions(): Client {
  client ??= createClient({
    url: endpoint.href.replace(/^http/, 'ws'),
    connectionParams: () => (savedToken() ? { authorization: `Bearer ${savedToken()}` } : {}),
    // Keep trying for as long as the page is open: the server may restart under it.
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    on: {
      connecting: () => announce('connecting'),
      connected: () => announce('connected'),
      closed: () => announce('disconnected'),
    },
  });
  return client;
}

function resetSubscriptions(): void {
  void client?.dispose();
  client = undefined;
}

export class ApiError extends Error {}

export async function execute<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables?: TVariables,
): Promise<TResult> {
  const token = savedToken();
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
    });
  } catch {
    throw new ApiError('The Drydock server is not answering.');
  }
  const body = (await response.json().catch(() => ({}))) as { data?: TResult; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) {
    throw new ApiError(body.errors?.map((e) => e.message).join('; ') ?? `HTTP ${response.status}`);
  }
  return body.data;
}

/** Subscribes with a generated document; returns the function that stops it. */
export function subscribe<TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  handlers: { next(data: TResult): void; error?(message: string): void; complete?(): void },
): () => void {
  return subscriptions().subscribe<TResult>(
    { query: document.toString(), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors?.length) handlers.error?.(result.errors.map((e) => e.message).join('; '));
        else if (result.data) handlers.next(result.data);
      },
      error: (error: unknown) =>
        handlers.error?.(
          Array.isArray(error) ? error.map((e: { message: string }) => e.message).join('; ') : 'connection lost',
        ),
      complete: () => handlers.complete?.(),
    },
  );
}
