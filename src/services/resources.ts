import { refusalAsSeen } from './hidden.js';
import type { Prisma, Resource } from '../generated/prisma/client.js';
import { sendCommand } from '../allocator/commands.js';
import type { AllocatorDeps, TxContext } from '../allocator/context.js';
import { loadBlueprint } from '../allocator/blueprints.js';
import { takeBuildTurn } from '../allocator/build-resource.js';
import { warmPoolKeeps } from '../allocator/warm-pool.js';
import { inTransaction } from '../allocator/transaction.js';
import { illegalTransition, notFound, validationError } from '../domain-errors.js';
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
  /**
   * Asks every idle resource (of a type) to go but those a blueprint's warm pool keeps (its
   * `minReady`); returns those asked. Admins only.
   */
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
      // A first look for the blueprints that have idle resources; each is then reclaimed from in a
      // transaction of its own, under its build turn (one turn at a time: no order to deadlock on).
      const since = new Date(deps.options.clock().getTime() - deps.options.reclaimGraceMs);
      const blueprints = await db.prisma.resource.findMany({
        where: idleWhere(input.resourceType, since),
        distinct: ['blueprintId'],
        select: { blueprintId: true },
        orderBy: { blueprintId: 'asc' },
      });
      const reclaimed: Resource[] = [];
      for (const { blueprintId } of blueprints) {
        reclaimed.push(...(await inTransaction(deps, (ctx) => reclaimOn(ctx, actor, blueprintId, input.resourceType))));
      }
      return ok(reclaimed.sort((a, b) => a.id - b.id));
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

/**
 * Idle: ACTIVE, no live lease, no lease acquired or destroyed on it within the grace period, not
 * already asked to go.
 */
function idleWhere(resourceType: string | undefined, since: Date, blueprintId?: number): Prisma.ResourceWhereInput {
  return {
    status: 'ACTIVE',
    ...(resourceType ? { type: resourceType } : {}),
    ...(blueprintId !== undefined ? { blueprintId } : {}),
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
  };
}

/**
 * Asks the blueprint's idle resources to go, but for those its warm pool keeps (`warmPoolKeeps`).
 * Under the blueprint's build turn, which its warm pool's fill and edits of it (minReady) take
 * too: the count of its ready resources and the commands are not interleaved with theirs.
 */
async function reclaimOn(
  ctx: TxContext<Prisma.TransactionClient>,
  actor: Actor,
  blueprintId: number,
  resourceType: string | undefined,
): Promise<Resource[]> {
  await takeBuildTurn(ctx, blueprintId);
  const since = new Date(ctx.now.getTime() - ctx.deps.options.reclaimGraceMs);
  const idle = await ctx.tx.resource.findMany({
    where: idleWhere(resourceType, since, blueprintId),
    orderBy: { id: 'asc' },
  });
  if (idle.length === 0) return [];
  const loaded = await loadBlueprint(ctx.tx, ctx.deps.registry, blueprintId);
  const kept = loaded ? (await warmPoolKeeps(ctx, loaded))(idle.map((resource) => resource.id)) : new Set<number>();
  // Each one's log entry is written under its row lock (allocator/logs.ts), taken here without
  // waiting: this holds the build turn, which a pass granting on one of them may be waiting for.
  // A row locked now is being worked on, not idle.
  const free = await ctx.tx.$queryRaw<{ id: number }[]>`
    SELECT id FROM "Resource" WHERE id = ANY(${idle.filter((resource) => !kept.has(resource.id)).map((resource) => resource.id)}::int[])
    ORDER BY id FOR NO KEY UPDATE SKIP LOCKED`;
  const reclaimed = idle.filter((resource) => free.some((row) => row.id === resource.id));
  for (const resource of reclaimed) {
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
  return reclaimed;
}
