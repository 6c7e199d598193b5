import { visibleWhere } from '../access/policy.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { LeaseStatus } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { LeaseStatusEnum } from './enums.js';
import { BlueprintNode } from './blueprint.js';
import { attributeConditions, idOrImpossible } from './filters.js';
import { PrincipalNode } from './principal.js';
import { ResourceNode } from './resource.js';

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
