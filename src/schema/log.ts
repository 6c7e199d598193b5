import { visibleWhere } from '../access/policy.js';
import { builder } from './builder.js';
import { hideOthers } from './hidden-leases.js';
import { BlueprintNode } from './blueprint.js';
import { databaseId } from './ids.js';
import { LeaseNode } from './lease.js';
import { ResourceNode } from './resource.js';
import { idCursors, keyset } from './keyset.js';

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

const MAX_LOG_ID = 9_223_372_036_854_775_807n;

/** Parses a log cursor; null when it is not one. */
export function parseCursor(cursor: string | null | undefined): bigint | null {
  if (cursor === null || cursor === undefined) return null;
  if (!/^\d{1,19}$/.test(cursor)) return null;
  // Log ids are PostgreSQL bigints: 19 digits can still be past the largest.
  const value = BigInt(cursor);
  return value <= MAX_LOG_ID ? value : null;
}

builder.queryField('logs', (t) =>
  t.prismaConnection({
    type: 'Log',
    cursor: 'id',
    description: 'Log entries, oldest first, of one lease, resource or blueprint (or all, for admins).',
    args: {
      leaseId: t.arg.globalID({ for: LeaseNode }),
      resourceId: t.arg.globalID({ for: ResourceNode }),
      blueprintId: t.arg.globalID({ for: BlueprintNode }),
    },
    ...idCursors('BigInt'),
    resolve: (query, _root, args, ctx) => {
      const idOf = (arg: { id: string } | null | undefined) => (arg ? (databaseId(arg) ?? -1) : undefined);
      const leaseId = idOf(args.leaseId);
      const resourceId = idOf(args.resourceId);
      const blueprintId = idOf(args.blueprintId);
      return ctx.db.prisma.log.findMany(
        keyset(query, {
          ...(leaseId !== undefined ? { leaseId } : {}),
          ...(resourceId !== undefined ? { resourceId } : {}),
          ...(blueprintId !== undefined ? { blueprintId } : {}),
          AND: [visibleWhere(ctx.actor, 'Log')],
        }),
      );
    },
  }),
);
