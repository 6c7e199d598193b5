import { PrincipalKind } from '../generated/prisma/enums.js';
import { builder } from './builder.js';

const PrincipalKindEnum = builder.enumType(PrincipalKind, { name: 'PrincipalKind' });

export const PrincipalNode = builder.prismaNode('Principal', {
  id: { field: 'id' },
  description: 'Whoever acts: a token holder, a service, a blueprint, or the system.',
  fields: (t) => ({
    databaseId: t.exposeInt('id'),
    name: t.exposeString('name'),
    kind: t.expose('kind', { type: PrincipalKindEnum }),
    isAdmin: t.exposeBoolean('isAdmin'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('viewer', (t) =>
  t.prismaField({
    type: 'Principal',
    description: 'Who you are, as the server sees your token.',
    resolve: (query, _root, _args, ctx) =>
      ctx.db.prisma.principal.findUniqueOrThrow({ ...query, where: { id: ctx.actor.principalId } }),
  }),
);
