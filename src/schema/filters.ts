import { GraphQLError } from 'graphql';
import type { Prisma } from '../generated/prisma/client.js';
import { databaseId } from './ids.js';

// What the lease and resource filters (lease-filter.ts, resource-filter.ts) share. There is one
// filter input per list, used by the list query and its `...Changed` subscription alike, so a
// dashboard can subscribe with exactly the filter it lists with.

type JsonObject = Record<string, unknown>;

/** Each key of `attributes` must be present with that value (a JSON containment test). */
export function attributeConditions(attributes: unknown): { attributes: Prisma.JsonFilter }[] {
  if (attributes === null || attributes === undefined) return [];
  if (typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new GraphQLError('filter.attributes must be a JSON object, e.g. { platform: "linux" }', {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return Object.entries(attributes as JsonObject).map(([key, value]) => ({
    attributes: { path: [key], equals: value as Prisma.InputJsonValue },
  }));
}

/** A filter's id of an object that cannot exist matches nothing (id -1), not everything. */
export const idOrImpossible = (globalId: { id: string } | null | undefined) =>
  globalId ? (databaseId(globalId) ?? -1) : null;
