import { visibleWhere } from '../access/policy.js';
import type { Prisma } from '../generated/prisma/client.js';
import type { ResourceStatus } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { ResourceStatusEnum } from './enums.js';
import { BlueprintNode } from './blueprint.js';
import { attributeConditions, idOrImpossible } from './filters.js';

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
