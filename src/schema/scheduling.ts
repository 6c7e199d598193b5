import type { Quota } from '../generated/prisma/client.js';
import type { QueueItem } from '../services/scheduling.js';
import { builder } from './builder.js';
import { domainErrors, unwrap } from './errors.js';
import { databaseId } from './ids.js';
import { blockerMessage } from './lease-blocker.js';
import { LeaseNode } from './lease.js';
import { PrincipalNode } from './principal.js';

// The scheduler's knobs (weights, quotas) and its visible queue.

builder.prismaObjectField(PrincipalNode, 'weight', (t) =>
  t.exposeInt('weight', {
    description: "Fair share: this principal's live leases of a type count divided by this (default 1).",
  }),
);

const QuotaRef = builder.objectRef<Quota>('Quota').implement({
  description:
    'At most `maxLeases` live leases of `resourceType` for one principal; more wait with the blocker `quota`.',
  fields: (t) => ({
    principalId: t.exposeInt('principalId'),
    resourceType: t.exposeString('resourceType'),
    maxLeases: t.exposeInt('maxLeases'),
  }),
});

const PrincipalPayload = builder.objectRef<{ principal: { id: number } }>('PrincipalPayload').implement({
  fields: (t) => ({
    principal: t.prismaField({
      type: 'Principal',
      resolve: (query, { principal }, _args, ctx) =>
        ctx.db.prisma.principal.findUniqueOrThrow({ ...query, where: { id: principal.id } }),
    }),
  }),
});

const QuotaPayload = builder.objectRef<{ quota: Quota | null }>('QuotaPayload').implement({
  fields: (t) => ({
    quota: t.field({
      type: QuotaRef,
      nullable: true,
      description: 'Null: the quota was removed.',
      resolve: (p) => p.quota,
    }),
  }),
});

builder.mutationFields((t) => ({
  setPrincipalWeight: t.field({
    type: PrincipalPayload,
    description: "Sets a principal's fair-share weight, 1 to 100 (admins).",
    errors: { types: [...domainErrors], directResult: true },
    args: {
      principalId: t.arg.globalID({ required: true, for: PrincipalNode }),
      weight: t.arg.int({ required: true }),
    },
    resolve: async (_root, args, ctx) => ({
      principal: unwrap(
        await ctx.services.scheduling.setPrincipalWeight(ctx.actor, databaseId(args.principalId) ?? 0, args.weight),
      ),
    }),
  }),
  setQuota: t.field({
    type: QuotaPayload,
    description: "Sets (or with maxLeases null, removes) a principal's quota of live leases of a type (admins).",
    errors: { types: [...domainErrors], directResult: true },
    args: {
      principalId: t.arg.globalID({ required: true, for: PrincipalNode }),
      resourceType: t.arg.string({ required: true }),
      maxLeases: t.arg.int(),
    },
    resolve: async (_root, args, ctx) => ({
      quota: unwrap(
        await ctx.services.scheduling.setQuota(ctx.actor, {
          principalId: databaseId(args.principalId) ?? 0,
          resourceType: args.resourceType,
          maxLeases: args.maxLeases ?? null,
        }),
      ),
    }),
  }),
}));

const QueueEntryRef = builder.objectRef<QueueItem>('QueueEntry').implement({
  description:
    "One waiting lease in its type's queue. Someone else's lease is anonymous: its place, priority and why it waits, not who or what.",
  fields: (t) => ({
    position: t.exposeInt('position', { description: '1 for the lease the next pass considers first.' }),
    priority: t.exposeInt('priority'),
    band: t.exposeInt('band', {
      description: 'Priority plus one per aging interval waited: what the pass orders by first.',
    }),
    anonymous: t.boolean({ resolve: (entry) => entry.lease === null }),
    lease: t.field({ type: LeaseNode, nullable: true, resolve: (entry) => entry.lease }),
    blockerReason: t.string({ nullable: true, resolve: (entry) => entry.blocker?.reason ?? null }),
    blockerMessage: t.string({
      nullable: true,
      resolve: (entry) => (entry.blocker ? blockerMessage(entry.blocker) : null),
    }),
  }),
});

const QueuePayload = builder.objectRef<{ entries: QueueItem[] }>('Queue').implement({
  fields: (t) => ({ entries: t.field({ type: [QueueEntryRef], resolve: (queue) => queue.entries }) }),
});

builder.queryField('queue', (t) =>
  t.field({
    type: QueuePayload,
    description:
      'The waiting leases of a resource type, in the order the next scheduling pass will consider them, each with what blocks it.',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      resourceType: t.arg.string({ required: true }),
      first: t.arg.int({ description: 'At most this many (1 to 1000; default 100).' }),
    },
    resolve: async (_root, args, ctx) => ({
      entries: unwrap(await ctx.services.scheduling.queue(ctx.actor, args.resourceType, args.first ?? 100)),
    }),
  }),
);
