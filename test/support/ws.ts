import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export function wsClient(graphqlUrl: string, connectionParams?: Record<string, unknown>): Client {
  return createClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    ...(connectionParams ? { connectionParams } : {}),
  });
}

/** Collects the results of one subscription until it completes or `until` says stop. */
export function collect<T>(
  client: Client,
  payload: { query: string; variables?: Record<string, unknown> },
  until: (items: T[]) => boolean = () => false,
): { done: Promise<T[]>; items: T[]; stop: () => void } {
  const items: T[] = [];
  let stop: () => void = () => {};
  const done = new Promise<T[]>((resolve, reject) => {
    const unsubscribe = client.subscribe<T>(payload, {
      next: (value) => {
        if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
        items.push(value.data as T);
        if (until(items)) {
          unsubscribe();
          resolve(items);
        }
      },
      // Operation errors arrive as a list of GraphQL errors; closes as a CloseEvent (with a code).
      error: (error: unknown) =>
        reject(Array.isArray(error) ? new Error(error.map((e: { message: string }) => e.message).join('; ')) : error),
      complete: () => resolve(items),
    });
    stop = () => {
      unsubscribe();
      resolve(items);
    };
  });
  return { done, items, stop };
}
