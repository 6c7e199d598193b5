import { visibleWhere } from '../access/policy.js';
import type { Authorization } from '../generated/prisma/client.js';
import { AuthorizationBlueprintState } from '../generated/prisma/enums.js';
import { BlueprintNode } from './blueprint.js';
import { builder } from './builder.js';
import { domainErrors, unwrap } from './errors.js';
import { databaseId, visibleNode } from './ids.js';
import { idCursors, keyset } from './keyset.js';
import { PrincipalNode } from './principal.js';

const AuthorizationStateEnum = builder.enumType(AuthorizationBlueprintState, {
  name: 'AuthorizationState',
  description: 'REQUESTED by a principal; AUTHORIZED or DECLINED by the blueprint editor.',
});

export const AuthorizationNode = builder.prismaNode('Authorization', {
  id: { field: 'id' },
  findUnique: visibleNode('Authorization'),
  nullable: true,
  description: 'May this principal lease from this blueprint?',
  fields: (t) => ({
    databaseId: t.exposeInt('id'),
    state: t.expose('blueprintState', { type: AuthorizationStateEnum }),
    blueprint: t.relation('blueprint'),
    principal: t.relation('principal'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const AuthorizationPayload = builder.objectRef<{ authorization: Authorization }>('AuthorizationPayload').implement({
  fields: (t) => ({
    authorization: t.field({ type: AuthorizationNode, resolve: (payload) => payload.authorization }),
  }),
});

const DecisionEnum = builder.enumType('AuthorizationDecision', { values: ['AUTHORIZED', 'DECLINED'] as const });

builder.mutationFields((t) => ({
  requestBlueprintAuthorization: t.field({
    type: AuthorizationPayload,
    description: 'Asks to lease from a blueprint: for yourself, or (admins) for another principal.',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      blueprintId: t.arg.globalID({ required: true, for: BlueprintNode }),
      principalId: t.arg.globalID({ for: PrincipalNode, description: 'Defaults to you.' }),
    },
    resolve: async (_root, args, ctx) => ({
      authorization: unwrap(
        await ctx.services.authorizations.request(ctx.actor, {
          blueprintId: databaseId(args.blueprintId) ?? 0,
          principalId: args.principalId ? (databaseId(args.principalId) ?? 0) : ctx.actor.principalId,
        }),
      ),
    }),
  }),
  setBlueprintAuthorization: t.field({
    type: AuthorizationPayload,
    description: 'Authorizes or declines a request. Declining does not release existing leases.',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      id: t.arg.globalID({ required: true, for: AuthorizationNode }),
      state: t.arg({ type: DecisionEnum, required: true }),
    },
    resolve: async (_root, args, ctx) => ({
      authorization: unwrap(
        await ctx.services.authorizations.set(ctx.actor, {
          authorizationId: databaseId(args.id) ?? 0,
          state: args.state,
        }),
      ),
    }),
  }),
}));

builder.queryField('authorizations', (t) =>
  t.prismaConnection({
    type: 'Authorization',
    cursor: 'id',
    description: 'Authorization requests and decisions: all of them for admins, your own otherwise.',
    args: {
      blueprintId: t.arg.globalID({ for: BlueprintNode }),
      state: t.arg({ type: AuthorizationStateEnum }),
    },
    ...idCursors('Int'),
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.authorization.findMany(
        keyset(query, {
          ...visibleWhere(ctx.actor, 'Authorization'),
          ...(args.blueprintId ? { blueprintId: databaseId(args.blueprintId) ?? -1 } : {}),
          ...(args.state ? { blueprintState: args.state } : {}),
        }),
      ),
  }),
);
