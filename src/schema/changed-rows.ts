import { queryFromInfo } from '@pothos/plugin-prisma';
import type { GraphQLResolveInfo } from 'graphql';
import { readThroughOutage } from '../db/connection-loss.js';
import type { GraphQLContext } from './context.js';
import { freshLoaderCache } from './event-stream.js';
import { sharedRead } from './shared-reads.js';

export type SelectionQuery = ReturnType<typeof queryFromInfo>;

/**
 * The row a dashboard subscription (leasesChanged, resourcesChanged) sends for one event, or null
 * when it does not pass the subscriber's filter. Read in the subscription, not in resolve, since
 * graphql-js cannot skip an event once it reaches resolve; with the selection's relations, in one
 * statement that the event's other subscribers with the same filter and selection share; and
 * through a database outage rather than ending the subscription.
 */
export function changedRow<T>(
  ctx: GraphQLContext,
  info: GraphQLResolveInfo,
  event: object,
  where: object,
  read: (query: SelectionQuery) => Promise<T>,
): Promise<T> {
  // The context lives as long as the subscription: without a fresh loader cache every event would
  // show the object as it was at the first. Before queryFromInfo, which records its mappings there.
  freshLoaderCache(ctx);
  const query = queryFromInfo({ context: ctx, info });
  return sharedRead(event, JSON.stringify([where, query]), () => readThroughOutage(() => read(query)));
}
