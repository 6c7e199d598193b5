import type { Lease, LeaseStatus, Log } from '../generated/prisma/client.js';
import { readThroughOutage } from '../db/connection-loss.js';
import { builder } from './builder.js';
import { LeaseStatusEnum } from './enums.js';
import { domainErrors, toProblem, unwrap } from './errors.js';
import { validationError } from '../services/index.js';
import { BlueprintNode } from './blueprint.js';
import { databaseId, visibleNode } from './ids.js';
import { freshLoaderCache, objectEventStream, statusAfter } from './event-stream.js';
import { LeaseFilter, leaseWhere } from './lease-filter.js';
import { LeaseBlockerRef } from './lease-blocker.js';
import { LogNode } from './log.js';
import { changeCursorOf, changedRows } from './changed-rows.js';
import { keptAlive } from './keep-alive.js';
import { idCursors, keyset } from './keyset.js';
import { PrincipalNode } from './principal.js';

export const LeaseNode = builder.prismaNode('Lease', {
  id: { field: 'id' },
  findUnique: visibleNode('Lease'),
  nullable: true,
  description: 'A claim on one resource.',
  fields: (t) => ({
    databaseId: t.exposeInt('id', { description: 'The numeric id the command line uses.' }),
    changeCursor: t.string({
      nullable: true,
      description:
        "In a `leasesChanged` event: the cursor of the lease's newest log entry this event shows (the lease's `logs` and `leaseEvents` use the same cursors). Events of one lease arrive in commit order; a client merging several subscriptions drops an event whose changeCursor is lower than one it has. Null when the lease was read any other way.",
      resolve: (lease) => changeCursorOf(lease),
    }),
    resourceType: t.exposeString('resourceType'),
    attributes: t.expose('attributes', { type: 'JSON' }),
    status: t.expose('status', { type: LeaseStatusEnum }),
    statusReason: t.exposeString('statusReason', {
      nullable: true,
      description:
        'Why the lease ended, as the log entry that ended it says (its `reason`); null while it is live, kept once DESTROYED. RELEASED: `command` (releaseLease, or the rest of its gang or the resource holding it let go), `expired` (`until` passed), `holder-lost`, `resource-released` (its resource was released), `gang-part-lost` (a part of its gang lost its resource). BROKEN: e.g. `no-blueprints`, `no-authorizations`, `cannot-ever-allocate`, `allocation-failed`, `resource-broken`, `setup-failed`, `wait-timeout`, `gang-part-ended`, `gang-part-failed`.',
    }),
    blocker: t.field({
      type: LeaseBlockerRef,
      nullable: true,
      description: 'Why a lease is not active yet ("why am I waiting"); null once it is active or over.',
      resolve: (lease) => {
        const recorded =
          lease.blocker && typeof lease.blocker === 'object' && 'reason' in lease.blocker
            ? (lease.blocker as { reason: string })
            : null;
        if (lease.status === 'PENDING') return recorded ? { lease, blocker: recorded } : null;
        // An acquired lease waits for its resource to open (or its own activation) by definition.
        if (lease.status === 'ACQUIRED') {
          return {
            lease,
            blocker: recorded ?? { reason: 'waiting-for-resource-activation', resourceId: lease.resourceId },
          };
        }
        return null;
      },
    }),
    until: t.expose('until', { type: 'DateTime', nullable: true }),
    priority: t.exposeInt('priority', { description: 'Served before lower ones of its type (-10 to 10; default 0).' }),
    waitUntil: t.expose('waitUntil', {
      type: 'DateTime',
      nullable: true,
      description: 'Still PENDING at this time, the lease breaks with `wait-timeout`.',
    }),
    gangId: t.exposeInt('gangId', {
      nullable: true,
      description: 'The gang this lease is a part of: its parts are granted together or not at all.',
    }),
    fence: t.exposeInt('fence', {
      nullable: true,
      description:
        'Fencing token: taken from its resource by the grant (and again by a hand-off), higher than any fence handed out on that resource before. A device or agent refuses work carrying a fence lower than the highest it has seen. Null until granted.',
    }),
    heartbeatSeconds: t.exposeInt('heartbeatSeconds', {
      nullable: true,
      description:
        'The holder must be seen this often (heartbeatLease, or an open leaseEvents subscription of the owner), or the lease is released with the reason `holder-lost`.',
    }),
    lastSeenAt: t.expose('lastSeenAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the holder of a heartbeat lease was last seen.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    acquiredAt: t.expose('acquiredAt', { type: 'DateTime', nullable: true }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    releasedAt: t.expose('releasedAt', { type: 'DateTime', nullable: true }),
    destroyedAt: t.expose('destroyedAt', { type: 'DateTime', nullable: true }),
    resource: t.relation('resource', { nullable: true }),
    logs: t.relation('logs', { query: { orderBy: { id: 'asc' }, take: 500 } }),
  }),
});

builder.queryFields((t) => ({
  lease: t.prismaField({
    type: 'Lease',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: LeaseNode }) },
    resolve: (query, _root, args, ctx) => {
      const id = databaseId(args.id);
      return id === null
        ? null
        : ctx.db.prisma.lease.findFirst({ ...query, where: { AND: [{ id }, leaseWhere(ctx, null)] } });
    },
  }),
  leases: t.prismaConnection({
    type: 'Lease',
    cursor: 'id',
    description: 'Leases you can see (all for admins, your own otherwise), oldest first.',
    args: { filter: t.arg({ type: LeaseFilter }) },
    ...idCursors('Int'),
    resolve: (query, _root, args, ctx) => ctx.db.prisma.lease.findMany(keyset(query, leaseWhere(ctx, args.filter))),
  }),
}));

const RequestLeaseInput = builder.inputType('RequestLeaseInput', {
  fields: (t) => ({
    resourceType: t.string({ required: true, description: 'e.g. host' }),
    attributes: t.field({ type: 'JSON', description: 'What the resource must offer, e.g. {"platform": "linux"}.' }),
    until: t.field({ type: 'DateTime', description: 'Release the lease by itself at this time.' }),
    ttlSeconds: t.int({ description: 'Release the lease by itself after this many seconds (instead of until).' }),
    blueprintIds: t.globalIDList({
      for: BlueprintNode,
      description: 'Blueprints that may serve the lease; empty means any.',
    }),
    count: t.int({ description: 'How many identical leases to request (1 to 100; default 1).' }),
    priority: t.int({
      description: 'Served before lower ones of its type: -10 to 10, default 0; above 0 needs the right to.',
    }),
    waitTimeoutSeconds: t.int({
      description: 'Break the lease (wait-timeout) if it is still PENDING after this long.',
    }),
    heartbeatSeconds: t.int({
      description:
        'Keep the lease only while its holder is seen at least this often (1 to 3600): heartbeatLease, or an open leaseEvents subscription of the owner. Otherwise it is released with the reason `holder-lost`.',
    }),
  }),
});

const GangPartInput = builder.inputType('GangPartInput', {
  fields: (t) => ({
    resourceType: t.string({ required: true }),
    attributes: t.field({ type: 'JSON' }),
    blueprintIds: t.globalIDList({
      for: BlueprintNode,
      description: 'Blueprints that may serve this part; empty means any.',
    }),
    count: t.int({ description: 'How many leases of this part (default 1).' }),
  }),
});

const RequestGangInput = builder.inputType('RequestGangInput', {
  fields: (t) => ({
    parts: t.field({ type: [GangPartInput], required: true }),
    until: t.field({ type: 'DateTime', description: 'Release every part by itself at this time.' }),
    priority: t.int({ description: 'As for requestLease.' }),
    waitTimeoutSeconds: t.int({ description: 'As for requestLease: every part breaks together.' }),
    heartbeatSeconds: t.int({
      description:
        'As for requestLease, for the gang as a whole: a heartbeat (or an open leaseEvents subscription) of any part counts for every part, and a lost holder releases every part with the reason `holder-lost`.',
    }),
  }),
});

const MAX_LEASES_PER_REQUEST = 100;

const RequestLeasePayload = builder.objectRef<{ leases: Lease[] }>('RequestLeasePayload').implement({
  fields: (t) => ({ leases: t.field({ type: [LeaseNode], resolve: (payload) => payload.leases }) }),
});

const ReleaseLeasePayload = builder.objectRef<{ lease: Lease }>('ReleaseLeasePayload').implement({
  fields: (t) => ({ lease: t.field({ type: LeaseNode, resolve: (payload) => payload.lease }) }),
});

builder.mutationFields((t) => ({
  requestLease: t.field({
    type: RequestLeasePayload,
    description: 'Asks for a resource. The lease starts PENDING; follow it with leaseEvents.',
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: RequestLeaseInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const count = input.count ?? 1;
      if (count < 1 || count > MAX_LEASES_PER_REQUEST) {
        throw toProblem(validationError(['count'], `count must be 1 to ${MAX_LEASES_PER_REQUEST}`));
      }
      if (input.until && input.ttlSeconds) {
        throw toProblem(validationError(['ttlSeconds'], 'give until or ttlSeconds, not both'));
      }
      if (input.ttlSeconds !== null && input.ttlSeconds !== undefined && input.ttlSeconds <= 0) {
        throw toProblem(validationError(['ttlSeconds'], 'ttlSeconds must be positive'));
      }
      const blueprintIds: number[] = [];
      for (const [index, globalId] of (input.blueprintIds ?? []).entries()) {
        const id = databaseId(globalId);
        if (id === null) {
          throw toProblem(validationError(['blueprintIds', index], 'not a blueprint id'));
        } else blueprintIds.push(id);
      }
      const attributes = input.attributes ?? {};
      if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
        throw toProblem(validationError(['attributes'], 'attributes must be a JSON object'));
      }
      const until = input.ttlSeconds ? new Date(Date.now() + input.ttlSeconds * 1_000) : (input.until ?? undefined);
      const leases = [];
      for (let i = 0; i < count; i++) {
        leases.push(
          unwrap(
            await ctx.services.leases.request(ctx.actor, {
              resourceType: input.resourceType,
              attributes: attributes as Record<string, unknown>,
              blueprintIds,
              ...(until ? { until } : {}),
              ...(input.priority !== null && input.priority !== undefined ? { priority: input.priority } : {}),
              ...(input.waitTimeoutSeconds !== null && input.waitTimeoutSeconds !== undefined
                ? { waitTimeoutSeconds: input.waitTimeoutSeconds }
                : {}),
              ...(input.heartbeatSeconds !== null && input.heartbeatSeconds !== undefined
                ? { heartbeatSeconds: input.heartbeatSeconds }
                : {}),
            }),
          ),
        );
      }
      return { leases };
    },
  }),
  requestGang: t.field({
    type: RequestLeasePayload,
    description:
      'Asks for several resources at once: every part is granted in one pass or none is, so a gang never holds some while it waits for others. Its parts are released together.',
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: RequestGangInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const parts = input.parts.map((part, index) => {
        const attributes = part.attributes ?? {};
        if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes))
          unwrap({
            ok: false,
            error: validationError(['parts', index, 'attributes'], 'attributes must be a JSON object'),
          });
        const blueprintIds = (part.blueprintIds ?? []).map((globalId) => databaseId(globalId) ?? 0);
        return {
          resourceType: part.resourceType,
          attributes: attributes as Record<string, unknown>,
          blueprintIds,
          ...(part.count !== null && part.count !== undefined ? { count: part.count } : {}),
        };
      });
      return {
        leases: unwrap(
          await ctx.services.leases.requestGang(ctx.actor, {
            parts,
            ...(input.until ? { until: input.until } : {}),
            ...(input.priority !== null && input.priority !== undefined ? { priority: input.priority } : {}),
            ...(input.waitTimeoutSeconds !== null && input.waitTimeoutSeconds !== undefined
              ? { waitTimeoutSeconds: input.waitTimeoutSeconds }
              : {}),
            ...(input.heartbeatSeconds !== null && input.heartbeatSeconds !== undefined
              ? { heartbeatSeconds: input.heartbeatSeconds }
              : {}),
          }),
        ),
      };
    },
  }),
  releaseLease: t.field({
    type: ReleaseLeasePayload,
    description: 'Asks the lease to release its resource; it goes RELEASED, then DESTROYED.',
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: LeaseNode }) },
    resolve: async (_root, args, ctx) => {
      const id = databaseId(args.id) ?? 0;
      return { lease: unwrap(await ctx.services.leases.release(ctx.actor, id)) };
    },
  }),
}));

const LeaseEventRef = builder.objectRef<{ log: Log }>('LeaseEvent').implement({
  description:
    "One entry of a lease's history: the log entry, the status it left the lease in, and the lease as it is now.",
  fields: (t) => ({
    cursor: t.string({ resolve: ({ log }) => log.id.toString() }),
    log: t.field({ type: LogNode, resolve: ({ log }) => log }),
    status: t.field({
      type: LeaseStatusEnum,
      description: "The lease's status right after this entry (`lease` is the lease as it is now).",
      resolve: async ({ log }, _args, ctx) => (await statusAfter(ctx, 'lease', log)) as LeaseStatus,
    }),
    lease: t.prismaField({
      type: 'Lease',
      resolve: (query, { log }, _args, ctx) =>
        readThroughOutage(() => ctx.db.prisma.lease.findUniqueOrThrow({ ...query, where: { id: log.leaseId! } })),
    }),
  }),
});

builder.subscriptionFields((t) => ({
  leaseEvents: t.field({
    type: LeaseEventRef,
    description:
      'Every log entry of one lease, in order. With `after` (a cursor; "0" for the whole history) it first replays what came after it, then goes on live, so a client that reconnects misses nothing. Completes once the lease is DESTROYED.',
    args: {
      leaseId: t.arg.globalID({ required: true, for: LeaseNode }),
      after: t.arg.string(),
    },
    subscribe: (_root, args, ctx) => {
      const id = databaseId(args.leaseId) ?? 0;
      return keptAlive(ctx, id, objectEventStream(ctx, { kind: 'lease', id }, args.after));
    },
    resolve: (event, _args, ctx) => {
      freshLoaderCache(ctx);
      return event;
    },
  }),
  leasesChanged: t.prismaField({
    type: 'Lease',
    description: 'Each lease you can see, whenever it changes (for dashboards); the same filter as `leases`.',
    args: { filter: t.arg({ type: LeaseFilter }) },
    subscribe: (_root, args, ctx, info) => {
      // Built once, when the subscription starts: a bad filter is refused then, not at the first event.
      const filter = leaseWhere(ctx, args.filter);
      return changedRows(
        ctx,
        info,
        ctx.pubsub.subscribe('leases:changed'),
        (event) => ({ kind: 'lease', id: event.leaseId }),
        (id) => ({ AND: [{ id }, filter] }),
        (query, where) => ctx.db.prisma.lease.findFirst({ ...query, where }),
      );
    },
    resolve: (_query, lease) => lease as Lease,
  }),
}));

const LeasePayload = builder.objectRef<{ lease: Lease }>('LeasePayload').implement({
  fields: (t) => ({ lease: t.field({ type: LeaseNode, resolve: (payload) => payload.lease }) }),
});

builder.mutationField('updateLease', (t) =>
  t.field({
    type: LeasePayload,
    description: "Runs the lease's update now instead of waiting for its next scheduled one (admins).",
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: LeaseNode }) },
    resolve: async (_root, args, ctx) => ({
      lease: unwrap(await ctx.services.leases.update(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
);

const TransferLeasePayload = builder.objectRef<{ lease: Lease }>('TransferLeasePayload').implement({
  fields: (t) => ({
    lease: t.field({
      type: LeaseNode,
      nullable: true,
      description: 'The lease as the caller now sees it: null for an owner who handed it to someone else.',
      resolve: (payload) => payload.lease,
    }),
  }),
});

builder.mutationFields((t) => ({
  heartbeatLease: t.field({
    type: LeasePayload,
    description:
      "The lease's holder (its owner only) is alive: a lease requested with heartbeatSeconds stays while this comes often enough.",
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: LeaseNode }) },
    resolve: async (_root, args, ctx) => ({
      lease: unwrap(await ctx.services.leases.heartbeat(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
  transferLease: t.field({
    type: TransferLeasePayload,
    description:
      'Hands an ACQUIRED or ACTIVE lease to another principal (its owner or an admin may), who must be allowed to lease from its blueprint. The lease gets a new fence; the old owner no longer sees it.',
    errors: { types: [...domainErrors], directResult: true },
    args: {
      id: t.arg.globalID({ required: true, for: LeaseNode }),
      toPrincipalId: t.arg.globalID({ required: true, for: PrincipalNode }),
    },
    resolve: async (_root, args, ctx) => {
      const to = databaseId(args.toPrincipalId);
      if (to === null) throw toProblem(validationError(['toPrincipalId'], 'not a principal id'));
      // The payload goes through the access guard like any read: after the hand-off the lease is
      // the new owner's, so an old owner who handed it off gets null.
      return { lease: unwrap(await ctx.services.leases.transfer(ctx.actor, databaseId(args.id) ?? 0, to)) };
    },
  }),
}));
