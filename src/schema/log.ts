import { builder } from './builder.js';
import { hideOthers } from './hidden-leases.js';

export const LogNode = builder.prismaObject('Log', {
  description: 'An event on a blueprint, resource or lease: every status change writes one.',
  fields: (t) => ({
    cursor: t.string({
      description: 'Position in the event streams: pass it as `after` to resume right after this entry.',
      resolve: (log) => log.id.toString(),
    }),
    type: t.exposeString('type', { description: 'What happened, e.g. lease-activated, slot-lock-failure.' }),
    // A lease's own entries may name others' leases (the holders of a slot it lost, what it waits
    // behind), and the principal who acted on the lease or resource (an admin's drain or release).
    data: t.field({ type: 'JSON', resolve: (log, _args, ctx) => hideOthers(log.data, ctx.access) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    leaseDatabaseId: t.exposeInt('leaseId', { nullable: true }),
    resourceDatabaseId: t.exposeInt('resourceId', { nullable: true }),
    blueprintDatabaseId: t.exposeInt('blueprintId', { nullable: true }),
  }),
});
