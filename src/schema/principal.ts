import { PrincipalKind, TokenScope } from '../generated/prisma/enums.js';
import { builder } from './builder.js';
import { visibleNode } from './ids.js';

const PrincipalKindEnum = builder.enumType(PrincipalKind, { name: 'PrincipalKind' });

export const TokenScopeEnum = builder.enumType(TokenScope, {
  name: 'TokenScope',
  description:
    'READ sees what the access policy allows; LEASE also requests, releases and runs commands on your leases; ADMIN is everything your principal may do.',
});

export const PrincipalNode = builder.prismaNode('Principal', {
  id: { field: 'id' },
  findUnique: visibleNode('Principal'),
  nullable: true,
  description: 'Whoever acts: a token holder, a service, a blueprint, or the system.',
  fields: (t) => ({
    databaseId: t.exposeInt('id'),
    name: t.exposeString('name'),
    kind: t.expose('kind', { type: PrincipalKindEnum }),
    isAdmin: t.exposeBoolean('isAdmin'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    tokenScopes: t.field({
      type: [TokenScopeEnum],
      nullable: true,
      description: 'On `viewer`: the scopes of the token this request uses. Null on any other principal.',
      resolve: (principal, _args, ctx) => (principal.id === ctx.actor.principalId ? [...ctx.actor.scopes] : null),
    }),
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
