import { GraphQLError } from 'graphql';
import { visibleWhere } from '../access/policy.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { LeaseStatus, ResourceStatus } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { LeaseStatusEnum, ResourceStatusEnum } from './enums.js';
import { BlueprintNode } from './blueprint.js';
import { databaseId } from './ids.js';
import { PrincipalNode } from './principal.js';
import { ResourceNode } from './resource.js';

// One filter input per list, shared by the list query and its `...Changed` subscription, so a
// dashboard can subscribe with exactly the filter it lists with.

type JsonObject = Record<string, unknown>;

/** Each key of `attributes` must be present with that value (a JSON containment test). */
function attributeConditions(attributes: unknown): { attributes: Prisma.JsonFilter }[] {
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

const idOrImpossible = (globalId: { id: string } | null | undefined) =>
  globalId ? (databaseId(globalId) ?? -1) : null;

export const LeaseFilter = builder.inputType('LeaseFilter', {
  fields: (t) => ({
    status: t.field({ type: [LeaseStatusEnum] }),
    resourceType: t.string(),
    blueprintId: t.globalID({ for: BlueprintNode, description: 'Leases on resources of this blueprint.' }),
    resourceId: t.globalID({ for: ResourceNode }),
    ownerId: t.globalID({
      for: PrincipalNode,
      description: 'Leases of this principal (admins; others only see their own anyway).',
    }),
    attributes: t.field({ type: 'JSON', description: 'Leases that asked for at least these attributes.' }),
  }),
});

export type LeaseFilterInput = typeof LeaseFilter.$inferInput;

export function leaseWhere(ctx: GraphQLContext, filter: LeaseFilterInput | null | undefined): Prisma.LeaseWhereInput {
  const blueprintId = idOrImpossible(filter?.blueprintId);
  const resourceId = idOrImpossible(filter?.resourceId);
  const ownerId = idOrImpossible(filter?.ownerId);
  return {
    AND: [
      visibleWhere(ctx.actor, 'Lease'),
      filter?.status?.length ? { status: { in: filter.status as LeaseStatus[] } } : {},
      filter?.resourceType ? { resourceType: filter.resourceType } : {},
      blueprintId !== null ? { resource: { blueprintId } } : {},
      resourceId !== null ? { resourceId } : {},
      ownerId !== null ? { ownerId } : {},
      ...attributeConditions(filter?.attributes),
    ],
  };
}

export const ResourceFilter = builder.inputType('ResourceFilter', {
  fields: (t) => ({
    status: t.field({ type: [ResourceStatusEnum] }),
    type: t.string(),
    blueprintId: t.globalID({ for: BlueprintNode }),
    attributes: t.field({ type: 'JSON', description: 'Resources that have at least these attributes.' }),
  }),
});

export type ResourceFilterInput = typeof ResourceFilter.$inferInput;

export function resourceWhere(
  ctx: GraphQLContext,
  filter: ResourceFilterInput | null | undefined,
): Prisma.ResourceWhereInput {
  const blueprintId = idOrImpossible(filter?.blueprintId);
  return {
    AND: [
      visibleWhere(ctx.actor, 'Resource'),
      filter?.status?.length ? { status: { in: filter.status as ResourceStatus[] } } : {},
      filter?.type ? { type: filter.type } : {},
      blueprintId !== null ? { blueprintId } : {},
      ...attributeConditions(filter?.attributes),
    ],
  };
}
