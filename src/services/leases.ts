import { z } from 'zod';
import type { Lease, Log } from '../generated/prisma/client.js';
import { loadBlueprint } from '../allocator/blueprints.js';
import { sendCommand } from '../allocator/commands.js';
import { inTransaction, type AllocatorDeps } from '../allocator/context.js';
import { notAuthorized, notFound, validationError, type DomainError } from '../allocator/errors.js';
import { writeLog } from '../allocator/logs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { canLeaseTransition } from '../allocator/state-machines.js';
import { scheduleLeaseUpdate } from '../queue/jobs.js';
import { updateLease } from '../allocator/lease-update.js';
import type { Actor } from './actor.js';
import { fromZod } from './validation.js';

export interface LeaseRequest {
  resourceType: string;
  attributes?: Record<string, unknown>;
  until?: Date;
  blueprintIds?: number[];
}

const leaseRequest = z.object({
  resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
  attributes: z.record(z.string(), z.unknown()).default({}),
  until: z.date().optional(),
  blueprintIds: z.array(z.number().int().positive()).default([]),
});

export interface LeaseService {
  /** Creates a PENDING lease owned by `actor` and schedules its update (which allocates). */
  request(actor: Actor, input: LeaseRequest): Promise<Result<Lease>>;
  /** Asks the lease to release itself (a command; its update does it). */
  release(actor: Actor, leaseId: number): Promise<Result<Lease>>;
  get(actor: Actor, leaseId: number): Promise<Result<Lease>>;
  /** Runs the lease's update now, under its lock (Drydock's `update-lease`). Admins only. */
  update(actor: Actor, leaseId: number): Promise<Result<Lease>>;
  /** The lease's log, oldest first, after `afterId` when given. */
  logs(actor: Actor, leaseId: number, afterId?: bigint): Promise<Result<Log[]>>;
  /** What the lease's resource offers its owner (e.g. ssh host and port), once ACTIVE. */
  interfaces(actor: Actor, leaseId: number): Promise<Result<Record<string, unknown>>>;
}

export function leaseService(deps: AllocatorDeps): LeaseService {
  const { db } = deps;

  async function visible(actor: Actor, leaseId: number): Promise<Result<Lease>> {
    const lease = await db.prisma.lease.findUnique({ where: { id: leaseId } });
    if (!lease) return fail(notFound('lease', leaseId));
    if (!actor.isAdmin && lease.ownerId !== actor.principalId)
      return fail(notAuthorized(`lease ${leaseId} belongs to someone else`));
    return ok(lease);
  }

  /**
   * The attributes must pass the lease-attribute schema of at least one implementation that yields
   * the type (by default or through a blueprint that says so). When no implementation yields it, or
   * one that does declares no schema, anything goes: the allocator decides, as Drydock does (a type
   * nobody yields breaks with `no-blueprints`). The first schema's complaint is reported.
   */
  async function checkAttributes(resourceType: string, attributes: Record<string, unknown>) {
    const viaBlueprints = await db.prisma.blueprint.findMany({
      where: { resourceType },
      distinct: ['implementation'],
      select: { implementation: true },
    });
    const keys = new Set(viaBlueprints.map((b) => b.implementation));
    const yielding = deps.registry.list().filter((i) => i.resourceType === resourceType || keys.has(i.key));
    if (yielding.length === 0) return null;
    let first: z.ZodError | undefined;
    for (const implementation of yielding) {
      if (!implementation.leaseAttributesSchema) return null;
      const parsed = implementation.leaseAttributesSchema.safeParse(attributes);
      if (parsed.success) return null;
      first ??= parsed.error;
    }
    return first ? fromZod(first, ['attributes']) : null;
  }

  return {
    async request(actor, input) {
      const parsed = leaseRequest.safeParse(input);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const request = parsed.data;
      const now = deps.options.clock();
      if (request.until && request.until <= now) return fail(validationError(['until'], 'until must be in the future'));
      if (request.blueprintIds.length > 0) {
        const found = await db.prisma.blueprint.findMany({
          where: { id: { in: request.blueprintIds } },
          select: { id: true },
        });
        const missing = request.blueprintIds.findIndex((id) => !found.some((b) => b.id === id));
        if (missing >= 0)
          return fail(
            validationError(['blueprintIds', missing], `blueprint ${request.blueprintIds[missing]} does not exist`),
          );
      }
      const attributesProblem = await checkAttributes(request.resourceType, request.attributes);
      if (attributesProblem) return fail(attributesProblem);
      const lease = await inTransaction(deps, async (ctx) => {
        const created = await ctx.tx.lease.create({
          data: {
            resourceType: request.resourceType,
            attributes: request.attributes as object,
            until: request.until ?? null,
            allowedBlueprintIds: request.blueprintIds,
            ownerId: actor.principalId,
            authorizingPrincipalId: actor.principalId,
            createdAt: ctx.now,
          },
        });
        await writeLog(
          ctx,
          {
            type: 'lease-requested',
            data: { resourceType: created.resourceType, until: created.until?.toISOString() ?? null },
            leaseId: created.id,
          },
          { lease: created.status },
        );
        scheduleLeaseUpdate(ctx, created.id);
        return created;
      });
      return ok(lease);
    },

    async update(actor, leaseId) {
      if (!actor.isAdmin) return fail(notAuthorized('only an administrator may run a lease update'));
      const exists = await db.prisma.lease.findUnique({ where: { id: leaseId }, select: { id: true } });
      if (!exists) return fail(notFound('lease', leaseId));
      await updateLease(deps, leaseId);
      return ok(await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } }));
    },

    async release(actor, leaseId) {
      const found = await visible(actor, leaseId);
      if (!found.ok) return found;
      const result = await inTransaction(deps, async (ctx): Promise<Result<Lease>> => {
        const lease = await ctx.tx.lease.findUniqueOrThrow({ where: { id: leaseId } });
        if (!canLeaseTransition(lease.status, 'RELEASED')) {
          const error: DomainError = {
            kind: 'IllegalTransitionError',
            entity: 'lease',
            id: leaseId,
            from: lease.status,
            to: 'RELEASED',
            message: `lease ${leaseId} is ${lease.status} and cannot be released`,
          };
          return fail(error);
        }
        await sendCommand(ctx, 'RELEASE', { leaseId }, actor.principalId);
        await writeLog(
          ctx,
          { type: 'lease-release-requested', data: { authorId: actor.principalId }, leaseId },
          { lease: lease.status },
        );
        return ok(lease);
      });
      return result;
    },

    get: visible,

    async logs(actor, leaseId, afterId) {
      const found = await visible(actor, leaseId);
      if (!found.ok) return found;
      return ok(
        await db.prisma.log.findMany({
          where: { leaseId, ...(afterId !== undefined ? { id: { gt: afterId } } : {}) },
          orderBy: { id: 'asc' },
        }),
      );
    },

    async interfaces(actor, leaseId) {
      const found = await visible(actor, leaseId);
      if (!found.ok) return found;
      const lease = found.value;
      if (lease.status !== 'ACTIVE' || lease.resourceId === null) return ok({});
      const resource = await db.prisma.resource.findUnique({ where: { id: lease.resourceId } });
      const loaded = resource ? await loadBlueprint(db.prisma, deps.registry, resource.blueprintId) : null;
      if (!resource || !loaded) return ok({});
      return ok(loaded.implementation.leaseInterfaces?.(loaded.blueprint, resource, lease) ?? {});
    },
  };
}
