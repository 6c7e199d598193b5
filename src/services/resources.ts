import { refusalAsSeen } from './hidden.js';
import type { Resource } from '../generated/prisma/client.js';
import { sendCommand } from '../allocator/commands.js';
import type { AllocatorDeps } from '../allocator/context.js';
import { inTransaction } from '../allocator/transaction.js';
import { illegalTransition, notFound, validationError } from '../allocator/errors.js';
import { writeLog } from '../allocator/logs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { canResourceTransition } from '../allocator/state-machines.js';
import { updateResource } from '../allocator/resource-update.js';
import { setDraining } from '../allocator/drain.js';
import { may, visibleWhere } from '../access/policy.js';
import type { Actor } from './actor.js';

export interface ResourceService {
  /** Asks a resource to release itself: its leases release first, then it is destroyed. Admins only. */
  release(actor: Actor, resourceId: number): Promise<Result<Resource>>;
  /** Asks every idle resource (of a type) to go; returns those asked. Admins only. */
  reclaim(actor: Actor, input: { resourceType?: string }): Promise<Result<Resource[]>>;
  get(actor: Actor, resourceId: number): Promise<Result<Resource>>;
  /** Runs the resource's update now, under its lock (Drydock's `update-resource`). Admins only. */
  update(actor: Actor, resourceId: number): Promise<Result<Resource>>;
  /**
   * Drains a live resource (no new lease; its leases run to their end), released once drained
   * when `release`; null ends the drain. Admins and the owner of its blueprint.
   */
  setDraining(actor: Actor, resourceId: number, drain: { release: boolean } | null): Promise<Result<Resource>>;
}

export function resourceService(deps: AllocatorDeps): ResourceService {
  const { db } = deps;
  return {
    async release(actor, resourceId) {
      const refused = may(actor, { kind: 'resource.release' });
      if (refused) return fail(refused);
      return inTransaction(deps, async (ctx): Promise<Result<Resource>> => {
        const resource = await ctx.tx.resource.findUnique({ where: { id: resourceId } });
        if (!resource) return fail(notFound('resource', resourceId));
        if (!canResourceTransition(resource.status, 'RELEASED')) {
          return fail(
            illegalTransition(
              'resource',
              resourceId,
              resource.status,
              'RELEASED',
              `resource ${resourceId} is ${resource.status} and cannot be released`,
            ),
          );
        }
        await sendCommand(ctx, 'RELEASE', { resourceId }, actor.principalId);
        await writeLog(
          ctx,
          {
            type: 'resource-release-requested',
            data: { authorId: actor.principalId, kind: 'release' },
            resourceId,
            blueprintId: resource.blueprintId,
          },
          { resource: resource.status },
        );
        return ok(resource);
      });
    },

    async reclaim(actor, input) {
      const refused = may(actor, { kind: 'resource.reclaim' });
      if (refused) return fail(refused);
      return inTransaction(deps, async (ctx): Promise<Result<Resource[]>> => {
        const since = new Date(ctx.now.getTime() - deps.options.reclaimGraceMs);
        // Idle means: no live lease, and no lease acquired or destroyed on it within the grace period.
        const idle = await ctx.tx.resource.findMany({
          where: {
            status: 'ACTIVE',
            ...(input.resourceType ? { type: input.resourceType } : {}),
            leases: {
              none: {
                OR: [
                  { status: { in: ['ACQUIRED', 'ACTIVE'] } },
                  { acquiredAt: { gte: since } },
                  { destroyedAt: { gte: since } },
                ],
              },
            },
            commands: { none: { consumed: false } },
          },
          orderBy: { id: 'asc' },
        });
        for (const resource of idle) {
          await sendCommand(ctx, 'RECLAIM', { resourceId: resource.id }, actor.principalId);
          await writeLog(
            ctx,
            {
              type: 'resource-release-requested',
              data: { authorId: actor.principalId, kind: 'reclaim' },
              resourceId: resource.id,
              blueprintId: resource.blueprintId,
            },
            { resource: resource.status },
          );
        }
        return ok(idle);
      });
    },

    async get(actor, resourceId) {
      // What the actor may not see does not exist for it: no hint that the id is taken.
      const resource = await db.prisma.resource.findFirst({
        where: { AND: [{ id: resourceId }, visibleWhere(actor, 'Resource')] },
      });
      return resource ? ok(resource) : fail(notFound('resource', resourceId));
    },

    async setDraining(actor, resourceId, drain) {
      return inTransaction(deps, async (ctx): Promise<Result<Resource>> => {
        // The row lock first: a grant in flight on this resource finishes (or waits) around it.
        const [locked] = await ctx.tx.$queryRaw<{ id: number }[]>`
          SELECT id FROM "Resource" WHERE id = ${resourceId} FOR NO KEY UPDATE`;
        const resource = locked
          ? await ctx.tx.resource.findUnique({ where: { id: resourceId }, include: { blueprint: true } })
          : null;
        if (!resource) return fail(notFound('resource', resourceId));
        const refused = await refusalAsSeen(
          ctx.tx,
          actor,
          may(actor, {
            kind: 'resource.drain',
            resource: { id: resourceId },
            blueprint: { id: resource.blueprintId, createdById: resource.blueprint.createdById },
          }),
          { type: 'Resource', entity: 'resource', id: resourceId },
        );
        if (refused) return fail(refused);
        if (resource.status !== 'PENDING' && resource.status !== 'ACTIVE') {
          const what = drain ? 'drained' : 'undrained';
          return fail(
            validationError(['id'], `resource ${resourceId} is ${resource.status}: only a live one can be ${what}`),
          );
        }
        const { blueprint: _blueprint, ...row } = resource;
        return ok(await setDraining(ctx, row, drain, actor.principalId));
      });
    },

    async update(actor, resourceId) {
      const refused = may(actor, { kind: 'resource.update' });
      if (refused) return fail(refused);
      const exists = await db.prisma.resource.findUnique({ where: { id: resourceId }, select: { id: true } });
      if (!exists) return fail(notFound('resource', resourceId));
      await updateResource(deps, resourceId);
      return ok(await db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } }));
    },
  };
}
