import { builder } from './builder.js';
import { databaseId } from './ids.js';

export const BlueprintNode = builder.prismaNode('Blueprint', {
  id: { field: 'id' },
  description: 'A configured way to produce resources of one type.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    name: t.exposeString('name'),
    implementation: t.exposeString('implementation', { description: 'The blueprint implementation, e.g. host-pool.' }),
    resourceType: t.exposeString('resourceType'),
    config: t.expose('config', { type: 'JSON' }),
    disabled: t.exposeBoolean('disabled'),
    resourceLimit: t.exposeInt('resourceLimit', {
      nullable: true,
      description: 'Concurrent-resource limit; null is unlimited.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    resources: t.relatedConnection('resources', { cursor: 'id', query: { orderBy: { id: 'asc' } } }),
  }),
});

builder.queryFields((t) => ({
  blueprint: t.prismaField({
    type: 'Blueprint',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: BlueprintNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null ? null : ctx.db.prisma.blueprint.findUnique({ ...query, where: { id } });
    },
  }),
  blueprints: t.prismaConnection({
    type: 'Blueprint',
    cursor: 'id',
    args: {
      resourceType: t.arg.string(),
      disabled: t.arg.boolean(),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.blueprint.findMany({
        ...query,
        where: {
          ...(args.resourceType ? { resourceType: args.resourceType } : {}),
          ...(typeof args.disabled === 'boolean' ? { disabled: args.disabled } : {}),
        },
        orderBy: { id: 'asc' },
      }),
  }),
}));
