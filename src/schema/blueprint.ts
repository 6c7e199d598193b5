import { visibleWhere } from '../access/policy.js';
import { redactConfig, secretsSet } from '../access/redaction.js';
import type { Blueprint } from '../generated/prisma/client.js';
import { blueprintPrincipalName } from '../allocator/blueprint-principal.js';
import { builder } from './builder.js';
import { domainErrors, unwrap } from './errors.js';
import { databaseId, visibleNode } from './ids.js';
import { idCursors, keyset } from './keyset.js';
import { nestedPage } from './nested-pages.js';

export const BlueprintNode = builder.prismaNode('Blueprint', {
  id: { field: 'id' },
  findUnique: visibleNode('Blueprint'),
  nullable: true,
  description: 'A configured way to produce resources of one type.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    name: t.exposeString('name'),
    implementation: t.exposeString('implementation', { description: 'The blueprint implementation, e.g. host-pool.' }),
    resourceType: t.exposeString('resourceType'),
    config: t.field({
      type: 'JSON',
      description:
        "The configuration without its secrets (e.g. an external provisioner's token): those are write-only.",
      resolve: (blueprint, _args, ctx) =>
        redactConfig(ctx.services.registry.get(blueprint.implementation), blueprint.config),
    }),
    secretsSet: t.stringList({
      description: 'The secret configuration keys that are set (their values are never returned).',
      resolve: (blueprint, _args, ctx) =>
        secretsSet(ctx.services.registry.get(blueprint.implementation), blueprint.config),
    }),
    disabled: t.exposeBoolean('disabled'),
    resourceLimit: t.exposeInt('resourceLimit', {
      nullable: true,
      description: 'Concurrent-resource limit; null is unlimited.',
    }),
    minReady: t.exposeInt('minReady', {
      description:
        'Warm pool: idle resources (ACTIVE, or PENDING on their way) kept ready within the resource limit, so that a lease is granted without waiting for one to open; 0 is none.',
    }),
    warmAttributes: t.field({
      type: 'JSON',
      description: "The lease attributes the warm pool's resources are built for.",
      resolve: (blueprint) => blueprint.warmAttributes,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    // Not a relatedConnection: that one pages inside the parent's query, with Prisma's cursor,
    // which no option of it replaces by an id range (see keyset.ts), and reads every resource the
    // blueprints ever had to do so. The pages of a list of blueprints are read together.
    resources: t.prismaConnection({
      type: 'Resource',
      cursor: 'id',
      ...idCursors('Int'),
      resolve: (query, blueprint, _args, ctx) =>
        nestedPage(ctx, { model: 'Resource', parentColumn: 'blueprintId' }, query, blueprint.id),
    }),
    authorizations: t.relation('authorizations', {
      query: (_args, ctx) => ({ where: visibleWhere(ctx.actor, 'Authorization'), orderBy: { id: 'asc' } }),
    }),
    principal: t.prismaField({
      type: 'Principal',
      nullable: true,
      description:
        'The principal this blueprint leases as (a working copy leases its host): authorize it on the blueprints it builds on.',
      resolve: (query, blueprint, _args, ctx) =>
        ctx.db.prisma.principal.findUnique({ ...query, where: { name: blueprintPrincipalName(blueprint.id) } }),
    }),
  }),
});

builder.queryFields((t) => ({
  blueprint: t.prismaField({
    type: 'Blueprint',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: BlueprintNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null
        ? null
        : ctx.db.prisma.blueprint.findFirst({
            ...query,
            where: { AND: [{ id }, visibleWhere(ctx.actor, 'Blueprint')] },
          });
    },
  }),
  blueprints: t.prismaConnection({
    type: 'Blueprint',
    cursor: 'id',
    args: {
      resourceType: t.arg.string(),
      disabled: t.arg.boolean(),
    },
    ...idCursors('Int'),
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.blueprint.findMany(
        keyset(query, {
          AND: [visibleWhere(ctx.actor, 'Blueprint')],
          ...(args.resourceType ? { resourceType: args.resourceType } : {}),
          ...(typeof args.disabled === 'boolean' ? { disabled: args.disabled } : {}),
        }),
      ),
  }),
}));

const CreateBlueprintInput = builder.inputType('CreateBlueprintInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    implementation: t.string({ required: true, description: 'e.g. host-pool' }),
    resourceType: t.string({
      description: "Defaults to the implementation's resource type when omitted; an empty one is refused.",
    }),
    config: t.field({ type: 'JSON', required: true, description: "Validated against the implementation's schema." }),
    resourceLimit: t.int({ description: 'Concurrent-resource limit; omit for none.' }),
    minReady: t.int({
      description: 'Idle resources kept ready (a warm pool), within the resource limit; omit for none.',
    }),
    warmAttributes: t.field({
      type: 'JSON',
      description: "The lease attributes the warm pool's resources are built for (validated like a lease's).",
    }),
  }),
});

const UpdateBlueprintInput = builder.inputType('UpdateBlueprintInput', {
  fields: (t) => ({
    name: t.string(),
    resourceType: t.string(),
    config: t.field({ type: 'JSON' }),
    resourceLimit: t.int(),
    minReady: t.int(),
    warmAttributes: t.field({ type: 'JSON' }),
  }),
});

/** The warm-pool fields given (null: left as is); their values are the service's to validate. */
function warmInput(input: { minReady?: number | null; warmAttributes?: unknown }) {
  return {
    ...(input.minReady !== null && input.minReady !== undefined ? { minReady: input.minReady } : {}),
    ...(input.warmAttributes !== null && input.warmAttributes !== undefined
      ? { warmAttributes: input.warmAttributes as Record<string, unknown> }
      : {}),
  };
}

const BlueprintPayload = builder.objectRef<{ blueprint: Blueprint }>('BlueprintPayload').implement({
  fields: (t) => ({ blueprint: t.field({ type: BlueprintNode, resolve: (payload) => payload.blueprint }) }),
});

builder.mutationFields((t) => ({
  createBlueprint: t.field({
    type: BlueprintPayload,
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: CreateBlueprintInput, required: true }) },
    resolve: async (_root, { input }, ctx) => ({
      blueprint: unwrap(
        await ctx.services.blueprints.create(ctx.actor, {
          name: input.name,
          implementation: input.implementation,
          config: input.config,
          // Only an absent resourceType defaults to the implementation's: "" is the service's to refuse.
          ...(input.resourceType !== null && input.resourceType !== undefined
            ? { resourceType: input.resourceType }
            : {}),
          ...(input.resourceLimit !== null && input.resourceLimit !== undefined
            ? { resourceLimit: input.resourceLimit }
            : {}),
          ...warmInput(input),
        }),
      ),
    }),
  }),
  updateBlueprint: t.field({
    type: BlueprintPayload,
    errors: { types: [...domainErrors], directResult: true },
    args: {
      id: t.arg.globalID({ required: true, for: BlueprintNode }),
      input: t.arg({ type: UpdateBlueprintInput, required: true }),
    },
    resolve: async (_root, { id, input }, ctx) => ({
      blueprint: unwrap(
        await ctx.services.blueprints.update(ctx.actor, databaseId(id) ?? 0, {
          ...(input.name !== null && input.name !== undefined ? { name: input.name } : {}),
          ...(input.resourceType !== null && input.resourceType !== undefined
            ? { resourceType: input.resourceType }
            : {}),
          ...(input.config !== null && input.config !== undefined ? { config: input.config } : {}),
          ...(input.resourceLimit !== undefined ? { resourceLimit: input.resourceLimit } : {}),
          ...warmInput(input),
        }),
      ),
    }),
  }),
  setBlueprintDisabled: t.field({
    type: BlueprintPayload,
    description: 'A disabled blueprint allocates nothing new; its resources and leases go on.',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      id: t.arg.globalID({ required: true, for: BlueprintNode }),
      disabled: t.arg.boolean({ required: true }),
    },
    resolve: async (_root, args, ctx) => ({
      blueprint: unwrap(await ctx.services.blueprints.setDisabled(ctx.actor, databaseId(args.id) ?? 0, args.disabled)),
    }),
  }),
}));
