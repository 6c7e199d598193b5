import { visibleWhere } from '../access/policy.js';
import { builder } from './builder.js';
import { BlueprintNode } from './blueprint.js';
import { databaseId } from './ids.js';
import { idCursors, keyset } from './keyset.js';
import { LeaseNode } from './lease.js';
import { ResourceNode } from './resource.js';

// Apart from log.ts: its arguments name the lease, resource and blueprint types, whose own
// `logs` fields need the Log type, so that the types import one way only.

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
