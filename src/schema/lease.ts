import { builder } from './builder.js';
import { LeaseStatusEnum } from './enums.js';
import { databaseId } from './ids.js';

export const LeaseNode = builder.prismaNode('Lease', {
  id: { field: 'id' },
  description: 'A claim on one resource.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    resourceType: t.exposeString('resourceType'),
    attributes: t.expose('attributes', { type: 'JSON' }),
    status: t.expose('status', { type: LeaseStatusEnum }),
    statusReason: t.exposeString('statusReason', { nullable: true }),
    until: t.expose('until', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    acquiredAt: t.expose('acquiredAt', { type: 'DateTime', nullable: true }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    releasedAt: t.expose('releasedAt', { type: 'DateTime', nullable: true }),
    destroyedAt: t.expose('destroyedAt', { type: 'DateTime', nullable: true }),
    resource: t.relation('resource', { nullable: true }),
  }),
});

builder.queryFields((t) => ({
  lease: t.prismaField({
    type: 'Lease',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: LeaseNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null ? null : ctx.db.prisma.lease.findUnique({ ...query, where: { id } });
    },
  }),
  leases: t.prismaConnection({
    type: 'Lease',
    cursor: 'id',
    args: {
      status: t.arg({ type: [LeaseStatusEnum] }),
      resourceType: t.arg.string(),
    },
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.lease.findMany({
        ...query,
        where: {
          ...(args.status?.length ? { status: { in: args.status } } : {}),
          ...(args.resourceType ? { resourceType: args.resourceType } : {}),
        },
        orderBy: { id: 'asc' },
      }),
  }),
}));
