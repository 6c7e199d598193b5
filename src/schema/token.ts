import { visibleWhere } from '../access/policy.js';
import type { ApiToken } from '../generated/prisma/client.js';
import { builder } from './builder.js';
import { TokenScopeEnum } from './principal.js';
import { domainErrors, unwrap } from './errors.js';
import { databaseId, visibleNode } from './ids.js';

export const ApiTokenNode = builder.prismaNode('ApiToken', {
  id: { field: 'id' },
  findUnique: visibleNode('ApiToken'),
  nullable: true,
  description: 'An API token. Only its prefix is ever shown again after creation.',
  fields: (t) => ({
    databaseId: t.exposeInt('id'),
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters, to recognise the token by.' }),
    scopes: t.field({ type: [TokenScopeEnum], resolve: (token) => token.scopes }),
    principal: t.relation('principal'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.prismaObjectField('Principal', 'tokens', (t) =>
  t.relation('tokens', {
    description: "Tokens of this principal (yours, or anyone's for an admin).",
    query: (_args, ctx) => ({
      where: visibleWhere(ctx.actor, 'ApiToken'),
      orderBy: { id: 'asc' },
    }),
  }),
);

const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'What the token is for, e.g. "ci-runner-3".' }),
    principalName: t.string({ description: 'Admins: whose token (a new principal is created). Default: yours.' }),
    isAdmin: t.boolean({ description: 'Admins: make the new principal an admin.' }),
    expiresAt: t.field({
      type: 'DateTime',
      description:
        "The token stops working at this time: no later than the creating token's own expiry, which it gets when none is given.",
    }),
    scopes: t.field({
      type: [TokenScopeEnum],
      description: 'What the token may do (default READ and LEASE); never more than the token creating it.',
    }),
  }),
});

const CreateApiTokenPayload = builder
  .objectRef<{ token: string; apiToken: ApiToken }>('CreateApiTokenPayload')
  .implement({
    fields: (t) => ({
      token: t.exposeString('token', { description: 'The secret. Shown this once: store it now.' }),
      apiToken: t.field({ type: ApiTokenNode, resolve: (payload) => payload.apiToken }),
    }),
  });

const RevokeApiTokenPayload = builder.objectRef<{ apiToken: ApiToken }>('RevokeApiTokenPayload').implement({
  fields: (t) => ({ apiToken: t.field({ type: ApiTokenNode, resolve: (payload) => payload.apiToken }) }),
});

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreateApiTokenPayload,
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    resolve: async (_root, { input }, ctx) =>
      unwrap(
        await ctx.services.tokens.create(ctx.actor, {
          name: input.name,
          ...(input.principalName ? { principalName: input.principalName } : {}),
          ...(typeof input.isAdmin === 'boolean' ? { isAdmin: input.isAdmin } : {}),
          ...(input.expiresAt ? { expiresAt: input.expiresAt } : {}),
          ...(input.scopes ? { scopes: input.scopes } : {}),
        }),
      ),
  }),
  revokeApiToken: t.field({
    type: RevokeApiTokenPayload,
    description: 'The token stops working at once.',
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: ApiTokenNode }) },
    resolve: async (_root, args, ctx) => ({
      apiToken: unwrap(await ctx.services.tokens.revoke(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
}));
