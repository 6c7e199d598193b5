import type { Log, Resource, ResourceStatus } from '../generated/prisma/client.js';
import { readThroughOutage } from '../db/connection-loss.js';
import { builder } from './builder.js';
import { ResourceStatusEnum } from './enums.js';
import { domainErrors, unwrap } from './errors.js';
import { freshLoaderCache, objectEventStream, statusAfter } from './event-stream.js';
import { ResourceFilter, resourceWhere } from './resource-filter.js';
import { databaseId, visibleNode } from './ids.js';
import { LogNode } from './log.js';
import { changeCursorOf, changedRows } from './changed-rows.js';
import { idCursors, keyset } from './keyset.js';
import { nestedPage } from './nested-pages.js';

export const ResourceNode = builder.prismaNode('Resource', {
  id: { field: 'id' },
  findUnique: visibleNode('Resource'),
  nullable: true,
  description: 'A thing a blueprint allocated: a host, a working copy, a cloud machine.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    changeCursor: t.string({
      nullable: true,
      description:
        "In a `resourcesChanged` event: the cursor of the resource's newest log entry this event shows. Events of one resource arrive in commit order; a client merging several subscriptions drops an event whose changeCursor is lower than one it has. Null when the resource was read any other way.",
      resolve: (resource) => changeCursorOf(resource),
    }),
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
    drainingAt: t.expose('drainingAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Draining since: it takes no new lease while its leases run to their end.',
    }),
    releaseWhenDrained: t.exposeBoolean('releaseWhenDrained', {
      description: 'Released once drained (no live lease left on it).',
    }),
    drainedForMaintenance: t.exposeBoolean('drainedForMaintenance', {
      description:
        "Draining because its blueprint's config took it out of service (a host-pool binding's `maintenance`): clearing that undrains it.",
    }),
    blueprint: t.relation('blueprint'),
    // Not a relatedConnection: that one pages inside the parent's query, with Prisma's cursor,
    // which no option of it replaces by an id range (see keyset.ts), and reads every lease the
    // resources ever had to do so. The pages of a list of resources are read together.
    leases: t.prismaConnection({
      type: 'Lease',
      cursor: 'id',
      ...idCursors('Int'),
      resolve: (query, resource, _args, ctx) =>
        nestedPage(ctx, { model: 'Lease', parentColumn: 'resourceId' }, query, resource.id),
    }),
  }),
});

builder.queryFields((t) => ({
  resource: t.prismaField({
    type: 'Resource',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: ResourceNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null
        ? null
        : ctx.db.prisma.resource.findFirst({ ...query, where: { AND: [{ id }, resourceWhere(ctx, null)] } });
    },
  }),
  resources: t.prismaConnection({
    type: 'Resource',
    cursor: 'id',
    description: 'Resources you can see (all for admins, those your leases hold otherwise), oldest first.',
    args: { filter: t.arg({ type: ResourceFilter }) },
    ...idCursors('Int'),
    resolve: (query, _root, args, ctx) =>
      ctx.db.prisma.resource.findMany(keyset(query, resourceWhere(ctx, args.filter))),
  }),
}));

const ResourcePayload = builder.objectRef<{ resource: Resource }>('ResourcePayload').implement({
  fields: (t) => ({ resource: t.field({ type: ResourceNode, resolve: (payload) => payload.resource }) }),
});

const ReclaimPayload = builder.objectRef<{ resources: Resource[] }>('ReclaimResourcesPayload').implement({
  fields: (t) => ({
    resources: t.field({
      type: [ResourceNode],
      description: 'The idle resources asked to go.',
      resolve: (payload) => payload.resources,
    }),
  }),
});

builder.mutationFields((t) => ({
  releaseResource: t.field({
    type: ResourcePayload,
    description: 'Releases a resource and every lease on it (admins).',
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: ResourceNode }) },
    resolve: async (_root, args, ctx) => ({
      resource: unwrap(await ctx.services.resources.release(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
  drainResource: t.field({
    type: ResourcePayload,
    description:
      'Drains a resource: it takes no new lease, its live leases run to their end, and with `release` it is then released (admins and the owner of its blueprint).',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      id: t.arg.globalID({ required: true, for: ResourceNode }),
      release: t.arg.boolean({ description: 'Release it once no live lease is left (default false).' }),
    },
    resolve: async (_root, args, ctx) => ({
      resource: unwrap(
        await ctx.services.resources.setDraining(ctx.actor, databaseId(args.id) ?? 0, {
          release: args.release ?? false,
        }),
      ),
    }),
  }),
  undrainResource: t.field({
    type: ResourcePayload,
    description: 'Ends a drain: the resource takes leases again (admins and the owner of its blueprint).',
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: ResourceNode }) },
    resolve: async (_root, args, ctx) => ({
      resource: unwrap(await ctx.services.resources.setDraining(ctx.actor, databaseId(args.id) ?? 0, null)),
    }),
  }),
  reclaimResources: t.field({
    type: ReclaimPayload,
    description: 'Releases idle resources so their capacity can serve other leases (admins).',
    errors: { types: [...domainErrors], directResult: true },
    args: { resourceType: t.arg.string() },
    resolve: async (_root, args, ctx) => ({
      resources: unwrap(
        await ctx.services.resources.reclaim(ctx.actor, args.resourceType ? { resourceType: args.resourceType } : {}),
      ),
    }),
  }),
}));

const ResourceEventRef = builder.objectRef<{ log: Log }>('ResourceEvent').implement({
  description: "One entry of a resource's history, with the resource as it is now.",
  fields: (t) => ({
    cursor: t.string({ resolve: ({ log }) => log.id.toString() }),
    log: t.field({ type: LogNode, resolve: ({ log }) => log }),
    status: t.field({
      type: ResourceStatusEnum,
      description: "The resource's status right after this entry (`resource` is the resource as it is now).",
      resolve: async ({ log }, _args, ctx) => (await statusAfter(ctx, 'resource', log)) as ResourceStatus,
    }),
    resource: t.prismaField({
      type: 'Resource',
      resolve: (query, { log }, _args, ctx) =>
        readThroughOutage(() => ctx.db.prisma.resource.findUniqueOrThrow({ ...query, where: { id: log.resourceId! } })),
    }),
  }),
});

builder.subscriptionFields((t) => ({
  resourceEvents: t.field({
    type: ResourceEventRef,
    description:
      'Every log entry of one resource, in order; `after` works as in leaseEvents. Completes once the resource is DESTROYED.',
    args: {
      resourceId: t.arg.globalID({ required: true, for: ResourceNode }),
      after: t.arg.string(),
    },
    subscribe: (_root, args, ctx) =>
      objectEventStream(ctx, { kind: 'resource', id: databaseId(args.resourceId) ?? 0 }, args.after),
    resolve: (event, _args, ctx) => {
      freshLoaderCache(ctx);
      return event;
    },
  }),
  resourcesChanged: t.prismaField({
    type: 'Resource',
    description: 'Each resource you can see, whenever it changes (for dashboards); the same filter as `resources`.',
    args: { filter: t.arg({ type: ResourceFilter }) },
    subscribe: (_root, args, ctx, info) => {
      // Built once, when the subscription starts: a bad filter is refused then, not at the first event.
      const filter = resourceWhere(ctx, args.filter);
      return changedRows(
        ctx,
        info,
        ctx.pubsub.subscribe('resources:changed'),
        (event) => ({ kind: 'resource', id: event.resourceId }),
        (id) => ({ AND: [{ id }, filter] }),
        (query, where) => ctx.db.prisma.resource.findFirst({ ...query, where }),
      );
    },
    resolve: (_query, resource) => resource as Resource,
  }),
}));

builder.mutationField('updateResource', (t) =>
  t.field({
    type: ResourcePayload,
    description: "Runs the resource's update now instead of waiting for its next scheduled one (admins).",
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: ResourceNode }) },
    resolve: async (_root, args, ctx) => ({
      resource: unwrap(await ctx.services.resources.update(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
);
