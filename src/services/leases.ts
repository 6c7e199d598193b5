import { z } from 'zod';
import type { Lease, Log } from '../generated/prisma/client.js';
import { loadBlueprint } from '../allocator/blueprints.js';
import type { AllocatorDeps } from '../allocator/context.js';
import {
  conflict,
  illegalTransition,
  notAuthorized,
  notFound,
  validationError,
  type DomainError,
} from '../domain-errors.js';
import { rawQueries } from '../db/raw-sql.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { implementationsSql, requestGang, requestLease, requestRelease } from '../allocator/requests.js';
import { updateLease } from '../allocator/lease-update.js';
import type { LeaseAttributeLimits } from '../allocator/options.js';
import { leaseHolderSql, leaseVisible, leaseWritableSql, may } from '../access/policy.js';
import { isAdmin } from '../access/actor.js';
import { heartbeatLease, leaseSeen, transferLease } from '../allocator/holders.js';
import type { Actor } from './actor.js';
import { mayRaisePriority } from './priority.js';
import { fromZod, inputMessages } from './validation.js';

export interface LeaseRequest {
  resourceType: string;
  attributes?: Record<string, unknown>;
  until?: Date;
  blueprintIds?: number[];
  /** -10..10, default 0; above 0 needs mayRaisePriority. */
  priority?: number;
  /** The longest the lease may stay PENDING; then it breaks with `wait-timeout`. */
  waitTimeoutSeconds?: number;
  /** The holder shows it is alive at least this often, or the lease is released (`holder-lost`). */
  heartbeatSeconds?: number;
}

/** Shorter than this, a busy server or a slow network would lose live holders. */
export const MIN_HEARTBEAT_SECONDS = 1;
/** Longer than this, a dead holder keeps its lease too long for the heartbeat to be worth having. */
export const MAX_HEARTBEAT_SECONDS = 3_600;

export const MIN_PRIORITY = -10;
export const MAX_PRIORITY = 10;
/** A wait timeout longer than this is a mistake, not a plan (30 days). */
const MAX_WAIT_TIMEOUT_SECONDS = 30 * 24 * 3600;

/** Several leases granted together or not at all (see allocator/scheduler/plan.ts). */
export interface GangRequest {
  parts: { resourceType: string; attributes?: Record<string, unknown>; blueprintIds?: number[]; count?: number }[];
  until?: Date;
  priority?: number;
  waitTimeoutSeconds?: number;
  /** As for a lease, for the whole gang: any part seen counts for all, a lost holder ends all. */
  heartbeatSeconds?: number;
}

/** A gang of more parts than this is not a gang but a fleet: request it in pieces. */
export const MAX_GANG_LEASES = 64;

const heartbeatSeconds = z
  .number()
  .int()
  .min(MIN_HEARTBEAT_SECONDS, `heartbeatSeconds must be at least ${MIN_HEARTBEAT_SECONDS}`)
  .max(MAX_HEARTBEAT_SECONDS, `heartbeatSeconds is at most ${MAX_HEARTBEAT_SECONDS}`)
  .optional();

const leaseRequest = z.object({
  resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
  attributes: z.record(z.string(), z.unknown()).default({}),
  until: z.date().optional(),
  blueprintIds: z.array(z.number().int().positive()).default([]),
  priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY).default(0),
  waitTimeoutSeconds: z.number().int().positive().max(MAX_WAIT_TIMEOUT_SECONDS).optional(),
  heartbeatSeconds,
});

const gangRequest = z.object({
  parts: z
    .array(
      z.object({
        resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
        attributes: z.record(z.string(), z.unknown()).default({}),
        blueprintIds: z.array(z.number().int().positive()).default([]),
        count: z.number().int().min(1).max(MAX_GANG_LEASES).default(1),
      }),
    )
    .min(1, 'a gang needs at least one part')
    .refine((parts) => parts.reduce((n, p) => n + p.count, 0) <= MAX_GANG_LEASES, {
      message: `a gang has at most ${MAX_GANG_LEASES} leases`,
    }),
  until: z.date().optional(),
  priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY).default(0),
  waitTimeoutSeconds: z.number().int().positive().max(MAX_WAIT_TIMEOUT_SECONDS).optional(),
  heartbeatSeconds,
});

export interface LeaseService {
  /** Several leases, all granted in one pass or none; released together. */
  requestGang(actor: Actor, input: GangRequest): Promise<Result<Lease[]>>;
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
  /** The holder (the owner only) shows it is alive. */
  heartbeat(actor: Actor, leaseId: number): Promise<Result<Lease>>;
  /**
   * An open leaseEvents subscription of the owner counts as a heartbeat: the lease was seen now.
   * Returns its heartbeatSeconds, or null when there is nothing to keep alive (not the owner's, no
   * heartbeat, over).
   */
  seen(actor: Actor, leaseId: number): Promise<number | null>;
  /** Gives a live lease to another principal (owner or admin), with a new fence. */
  transfer(actor: Actor, leaseId: number, toPrincipalId: number): Promise<Result<Lease>>;
}

/** An action that changes no status but that the lease's status rules out. */
function stuck(lease: Pick<Lease, 'id' | 'status'>, why: string): DomainError {
  return illegalTransition(
    'lease',
    lease.id,
    lease.status,
    lease.status,
    `lease ${lease.id} is ${lease.status}: ${why}`,
  );
}

function illegalRelease(lease: Lease): DomainError {
  return illegalTransition(
    'lease',
    lease.id,
    lease.status,
    'RELEASED',
    `lease ${lease.id} is ${lease.status} and cannot be released`,
  );
}

/** A ValidationError when the attributes pass a configured limit (LEASE_ATTRIBUTES_* settings). */
function attributesTooBig(attributes: Record<string, unknown>, limits: LeaseAttributeLimits): DomainError | null {
  const keys = Object.keys(attributes);
  if (keys.length > limits.maxKeys)
    return validationError(['attributes'], `at most ${limits.maxKeys} attributes (got ${keys.length})`);
  for (const key of keys) {
    const length = JSON.stringify(attributes[key] ?? null).length;
    if (key.length > limits.maxValueLength || length > limits.maxValueLength)
      return validationError(
        ['attributes', key],
        `an attribute is at most ${limits.maxValueLength} characters as JSON`,
      );
  }
  const bytes = Buffer.byteLength(JSON.stringify(attributes));
  if (bytes > limits.maxTotalBytes)
    return validationError(
      ['attributes'],
      `attributes are at most ${limits.maxTotalBytes} bytes as JSON (got ${bytes})`,
    );
  return null;
}

export function leaseService(deps: AllocatorDeps): LeaseService {
  const { db } = deps;

  async function visible(actor: Actor, leaseId: number): Promise<Result<Lease>> {
    // Every subscription to a lease starts here: raw, which costs a fraction of the client's read.
    const [lease] = await (await rawQueries(db)).$queryRaw<Lease[]>`SELECT * FROM "Lease" WHERE id = ${leaseId}`;
    // What the actor may not see does not exist for it: no hint that the id is taken.
    return lease && leaseVisible(actor, lease) ? ok(lease) : fail(notFound('lease', leaseId));
  }

  /**
   * The attributes must pass the lease-attribute schema of at least one implementation that yields
   * the type (by default or through a blueprint that says so). When no implementation yields it, or
   * one that does declares no schema, anything goes: the allocator decides, as Drydock does (a type
   * nobody yields breaks with `no-blueprints`). The first schema's complaint is reported.
   *
   * `viaBlueprints`: the implementations of the blueprints of the type, as last seen (see request).
   */
  function checkAttributes(resourceType: string, attributes: Record<string, unknown>, viaBlueprints: string[]) {
    const keys = new Set(viaBlueprints);
    const yielding = deps.registry.list().filter((i) => i.resourceType === resourceType || keys.has(i.key));
    if (yielding.length === 0) return null;
    let first: z.ZodError | undefined;
    for (const implementation of yielding) {
      if (!implementation.leaseAttributesSchema) return null;
      const parsed = implementation.leaseAttributesSchema.safeParse(attributes, inputMessages);
      if (parsed.success) return null;
      first ??= parsed.error;
    }
    return first ? fromZod(first, ['attributes']) : null;
  }

  // The implementations of each type's blueprints, as the last request of the type saw them. A
  // request checks its attributes against this and its insert is conditional on it still being
  // so; only when it is not (a blueprint was added or changed) does it read the set and try again.
  // A request thus needs no statement of its own for the check.
  const implementationsOfType = new Map<string, string[]>();
  const remember = (resourceType: string, implementations: string[]) => {
    // Types are whatever clients ask for: the memory of them is bounded.
    if (implementationsOfType.size >= 1_000 && !implementationsOfType.has(resourceType)) implementationsOfType.clear();
    implementationsOfType.set(resourceType, implementations);
  };
  const readImplementations = async (resourceType: string) => {
    const [row] = await db.prisma.$queryRaw<{ impls: string[] }[]>`
      SELECT ${implementationsSql(resourceType)} AS impls`;
    return row?.impls ?? [];
  };

  /** The index of the first id that names no blueprint; -1 when all do. */
  const missingBlueprint = async (ids: number[]) => {
    if (ids.length === 0) return -1;
    const found = await db.prisma.blueprint.findMany({ where: { id: { in: ids } }, select: { id: true } });
    return ids.findIndex((id) => !found.some((b) => b.id === id));
  };

  return {
    async request(actor, input) {
      const refused = may(actor, { kind: 'lease.request' });
      if (refused) return fail(refused);
      const parsed = leaseRequest.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const request = parsed.data;
      const tooBig = attributesTooBig(request.attributes, deps.options.leaseAttributeLimits);
      if (tooBig) return fail(tooBig);
      if (request.priority > 0 && mayRaisePriority(actor)) return fail(mayRaisePriority(actor)!);
      const now = deps.options.clock();
      if (request.until && request.until <= now) return fail(validationError(['until'], 'until must be in the future'));
      const missing = await missingBlueprint(request.blueprintIds);
      if (missing >= 0)
        return fail(
          validationError(['blueprintIds', missing], `blueprint ${request.blueprintIds[missing]} does not exist`),
        );
      // A type not seen yet is tried as having no blueprints; the statement says otherwise if so.
      let seen = implementationsOfType.get(request.resourceType) ?? [];
      let fresh = false;
      for (;;) {
        const attributesProblem = checkAttributes(request.resourceType, request.attributes, seen);
        if (attributesProblem) {
          // A refusal is never made on a set that may be stale.
          if (fresh) return fail(attributesProblem);
          seen = await readImplementations(request.resourceType);
          remember(request.resourceType, seen);
          fresh = true;
          continue;
        }
        const outcome = await requestLease(
          deps,
          {
            resourceType: request.resourceType,
            attributes: request.attributes,
            until: request.until ?? null,
            blueprintIds: request.blueprintIds,
            ownerId: actor.principalId,
            priority: request.priority,
            waitUntil:
              request.waitTimeoutSeconds === undefined
                ? null
                : new Date(now.getTime() + request.waitTimeoutSeconds * 1000),
            heartbeatSeconds: request.heartbeatSeconds ?? null,
          },
          seen,
        );
        if ('lease' in outcome) {
          remember(request.resourceType, seen);
          return ok(outcome.lease);
        }
        seen = outcome.implementations;
        remember(request.resourceType, seen);
        fresh = true;
      }
    },

    async requestGang(actor, input) {
      const refused = may(actor, { kind: 'lease.request' });
      if (refused) return fail(refused);
      const parsed = gangRequest.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const gang = parsed.data;
      if (gang.priority > 0 && mayRaisePriority(actor)) return fail(mayRaisePriority(actor)!);
      const now = deps.options.clock();
      if (gang.until && gang.until <= now) return fail(validationError(['until'], 'until must be in the future'));
      for (const [index, part] of gang.parts.entries()) {
        const implementations = await readImplementations(part.resourceType);
        const tooBig = attributesTooBig(part.attributes, deps.options.leaseAttributeLimits);
        if (tooBig?.kind === 'ValidationError') return fail({ ...tooBig, path: ['parts', index, ...tooBig.path] });
        const problem = checkAttributes(part.resourceType, part.attributes, implementations);
        if (problem) return fail({ ...problem, path: ['parts', index, ...problem.path] });
        const missing = await missingBlueprint(part.blueprintIds);
        if (missing >= 0)
          return fail(
            validationError(
              ['parts', index, 'blueprintIds', missing],
              `blueprint ${part.blueprintIds[missing]} does not exist`,
            ),
          );
      }
      // A gang is granted whole or not at all: more parts of a type than the owner's quota of it
      // could never be granted, and would wait for ever.
      const asked = new Map<string, number>();
      for (const part of gang.parts) asked.set(part.resourceType, (asked.get(part.resourceType) ?? 0) + part.count);
      const quotas = await db.prisma.quota.findMany({
        where: { principalId: actor.principalId, resourceType: { in: [...asked.keys()] } },
      });
      for (const quota of quotas) {
        const count = asked.get(quota.resourceType)!;
        if (count > quota.maxLeases)
          return fail(
            validationError(
              ['parts', gang.parts.findIndex((part) => part.resourceType === quota.resourceType)],
              `the gang asks for ${count} leases of ${quota.resourceType}, more than your quota of ${quota.maxLeases}: it could never be granted`,
            ),
          );
      }
      return ok(
        await requestGang(deps, {
          parts: gang.parts,
          until: gang.until ?? null,
          ownerId: actor.principalId,
          priority: gang.priority,
          waitUntil:
            gang.waitTimeoutSeconds === undefined ? null : new Date(now.getTime() + gang.waitTimeoutSeconds * 1000),
          heartbeatSeconds: gang.heartbeatSeconds ?? null,
        }),
      );
    },

    async update(actor, leaseId) {
      const refused = may(actor, { kind: 'lease.update' });
      if (refused) return fail(refused);
      const exists = await db.prisma.lease.findUnique({ where: { id: leaseId }, select: { id: true } });
      if (!exists) return fail(notFound('lease', leaseId));
      await updateLease(deps, leaseId);
      return ok(await db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } }));
    },

    async release(actor, leaseId) {
      const outcome = await requestRelease(deps, leaseId, actor.principalId, leaseWritableSql(actor));
      switch (outcome.kind) {
        case 'not-found':
          return fail(notFound('lease', leaseId));
        case 'not-visible':
          return fail(may(actor, { kind: 'lease.release', lease: outcome.lease })!);
        case 'held-by-resource':
          // Releasing it from under its resource would break the resource (a working copy loses its
          // host and its directory stays behind): the resource ends it when it is itself released.
          return fail(
            notAuthorized(
              `lease ${leaseId} is held by resource ${outcome.lease.ownerResourceId} for itself: release resource ${outcome.lease.ownerResourceId} instead`,
            ),
          );
        case 'not-releasable':
          return fail(illegalRelease(outcome.lease));
        case 'released':
          return ok(outcome.lease);
      }
    },

    get: visible,

    async heartbeat(actor, leaseId) {
      const outcome = await heartbeatLease(deps, leaseId, leaseHolderSql(actor));
      switch (outcome.kind) {
        case 'seen':
          return ok(outcome.lease);
        case 'not-found':
          return fail(notFound('lease', leaseId));
        case 'refused':
          return fail(may(actor, { kind: 'lease.heartbeat', lease: outcome.lease })!);
        case 'over':
          return fail(stuck(outcome.lease, 'it has no holder to keep alive'));
      }
    },

    async seen(actor, leaseId) {
      // The heartbeat rule: a holder with the LEASE scope, on its own lease (checked in the statement).
      if (may(actor, { kind: 'lease.heartbeat', lease: { id: leaseId, ownerId: actor.principalId } })) return null;
      return leaseSeen(deps, actor.principalId, leaseId);
    },

    async transfer(actor, leaseId, toPrincipalId) {
      const outcome = await transferLease(
        deps,
        leaseId,
        toPrincipalId,
        actor.principalId,
        (lease) => may(actor, { kind: 'lease.transfer', lease }) === null,
      );
      switch (outcome.kind) {
        case 'transferred':
          return ok(outcome.lease);
        case 'not-found':
          return fail(notFound('lease', leaseId));
        case 'refused':
          return fail(may(actor, { kind: 'lease.transfer', lease: outcome.lease })!);
        case 'not-live':
          return fail(stuck(outcome.lease, 'only an ACQUIRED or ACTIVE lease can be handed off'));
      }
      // Principals other than itself do not exist for a non-admin: whether this one does, may
      // lease from the blueprint or has room under a quota is one answer, or the refusals would
      // list the principals and their authorizations.
      if (!isAdmin(actor))
        return fail(
          validationError(['toPrincipalId'], `principal ${toPrincipalId} does not exist or may not take this lease`),
        );
      switch (outcome.kind) {
        case 'no-recipient':
          return fail(validationError(['toPrincipalId'], `principal ${toPrincipalId} does not exist`));
        case 'recipient-at-quota':
          return fail(
            conflict(
              `principal ${toPrincipalId} is at its quota of ${outcome.quota} live leases of ${outcome.resourceType}`,
            ),
          );
        case 'recipient-not-authorized':
          return fail(
            validationError(
              ['toPrincipalId'],
              `principal ${toPrincipalId} is not authorized to lease from blueprint ${outcome.blueprintId}`,
            ),
          );
      }
    },

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
      // Every resource's interface carries the lease's fence, for the device or agent to check.
      const fencing = { leaseId: lease.id, resourceId: resource.id, fence: lease.fence };
      return ok({ ...(loaded.implementation.leaseInterfaces?.(loaded.blueprint, resource, lease) ?? {}), fencing });
    },
  };
}
