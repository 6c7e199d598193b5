import { builder } from './builder.js';
import { ResourceStatusEnum } from './enums.js';
import { databaseId } from './ids.js';

export const ResourceNode = builder.prismaNode('Resource', {
  id: { field: 'id' },
  description: 'A thing a blueprint allocated: a host, a working copy, a cloud machine.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    name: t.exposeString('name'),
    type: t.exposeString('type'),
    status: t.expose('status', { type: ResourceStatusEnum }),
    attributes: t.expose('attributes', { type: 'JSON' }),
    until: t.expose('until', { type: 'DateTime', nullable: true }),
    statusReason: t.exposeString('statusReason', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    releasedAt: t.expose('releasedAt', { type: 'DateTime', nullable: true }),
    destroyedAt: t.expose('destroyedAt', { type: 'DateTime', nullable: true }),
    blueprint: t.relation('blueprint'),
    leases: t.relatedConnection('leases', { cursor: 'id', query: { orderBy: { id: 'asc' } } }),
  }),
});

builder.queryFields((t) => ({
  resource: t.prismaField({
    type: 'Resource',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: ResourceNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null ? null : ctx.db.prisma.resource.findUnique({ ...query, where: { id } });
    },
  }),
  resources: t.prismaConnection({
    type: 'Resource',
    cursor: 'id',
    args: {
      status: t.arg({ type: [ResourceStatusEnum] }),
      type: t.arg.string(),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.resource.findMany({
        ...query,
        where: {
          ...(args.status?.length ? { status: { in: args.status } } : {}),
          ...(args.type ? { type: args.type } : {}),
        },
        orderBy: { id: 'asc' },
      }),
  }),
}));
