import { z } from 'zod';
import { Prisma, type Lease, type LeaseStatus, type Log } from '../generated/prisma/client.js';
import { loadBlueprint } from '../allocator/blueprints.js';
import { AfterCommit, CarriedCommit, type AllocatorDeps } from '../allocator/context.js';
import { notFound, validationError, type DomainError } from '../allocator/errors.js';
import { publishLog } from '../allocator/logs.js';
import { rawQueries } from '../allocator/raw-sql.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { leaseTransitions } from '../allocator/state-machines.js';
import { startOrCancel, upsertJobSql } from '../queue/jobs.js';
import { reserveLocalSlot } from '../queue/worker.js';
import { updateLease } from '../allocator/lease-update.js';
import type { LeaseAttributeLimits } from '../allocator/options.js';
import { leaseVisible, leaseWritableSql, may } from '../access/policy.js';
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

/** The statuses a RELEASE is accepted in (the state machine's, checked in the statement). */
const releasable = (Object.keys(leaseTransitions) as LeaseStatus[]).filter((from) =>
  leaseTransitions[from].includes('RELEASED'),
);

function illegalRelease(lease: Lease): DomainError {
  return {
    kind: 'IllegalTransitionError',
    entity: 'lease',
    id: lease.id,
    from: lease.status,
    to: 'RELEASED',
    message: `lease ${lease.id} is ${lease.status} and cannot be released`,
  };
}

// The lease's job, as written by upsertJobSql, next to the lease's columns.
const jobColumns = Prisma.sql`j.id AS __job_id, j.key AS __job_key, j."runAt" AS __job_run_at,
  j.attempts AS __job_attempts, j.mine AS __job_mine`;

/** The distinct implementations of the blueprints of a type, sorted, as a text[] expression. */
const implementationsSql = (resourceType: string) => Prisma.sql`
  ARRAY(SELECT DISTINCT implementation FROM "Blueprint" WHERE "resourceType" = ${resourceType} ORDER BY implementation)`;

type RequestRow = LeaseRow & { __impls: string[] };

type LeaseRow = Lease & {
  __log: bigint | null;
  __job_id: bigint | null;
  __job_key: string | null;
  __job_run_at: Date | null;
  __job_attempts: number | null;
  __job_mine: boolean | null;
};

function splitRow(row: LeaseRow) {
  const {
    __log: logId,
    __job_id: id,
    __job_key: key,
    __job_run_at: runAt,
    __job_attempts: attempts,
    __job_mine: mine,
    ...lease
  } = row;
  const job =
    id !== null && key !== null && runAt !== null
      ? { id, key, runAt, attempts: Number(attempts), mine: mine === true }
      : undefined;
  return { lease: lease as Lease, logId, job };
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
      const parsed = implementation.leaseAttributesSchema.safeParse(attributes);
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

  return {
    async request(actor, input) {
      const refused = may(actor, { kind: 'lease.request' });
      if (refused) return fail(refused);
      const parsed = leaseRequest.safeParse(input);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const request = parsed.data;
      const tooBig = attributesTooBig(request.attributes, deps.options.leaseAttributeLimits);
      if (tooBig) return fail(tooBig);
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
      const requested = { resourceType: request.resourceType, until: request.until?.toISOString() ?? null };
      // A type not seen yet is tried as having no blueprints; the statement says otherwise if so.
      let seen = implementationsOfType.get(request.resourceType) ?? [];
      let fresh = false;
      let row: RequestRow | undefined;
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
        // One statement, so one round trip and one commit: the lease, its log and its job. When a
        // worker of this process has a free slot, the job is written claimed by it and its first
        // update starts as soon as the statement returns, with no wake-up or claim in between.
        const reservation = reserveLocalSlot(db);
        try {
          [row] = await (
            await rawQueries(db)
          ).$queryRaw<RequestRow[]>`
            WITH seen AS (SELECT ${implementationsSql(request.resourceType)} AS impls),
            l AS (
              INSERT INTO "Lease" ("resourceType", attributes, until, "allowedBlueprintIds", "ownerId",
                                   "authorizingPrincipalId", "createdAt", "updatedAt")
              SELECT ${request.resourceType}, ${JSON.stringify(request.attributes)}::jsonb, ${request.until ?? null}::timestamp,
                     ${request.blueprintIds}::int[], ${actor.principalId}::int, ${actor.principalId}::int,
                     ${now}::timestamp, ${now}::timestamp
              FROM seen WHERE impls = ${seen}::text[]
              RETURNING *),
            g AS (
              INSERT INTO "Log" (type, data, "createdAt", "leaseId")
              SELECT 'lease-requested', ${JSON.stringify(requested)}::jsonb, ${now}::timestamp, l.id FROM l RETURNING id),
            j AS (${upsertJobSql('LEASE_UPDATE', Prisma.sql`SELECT id FROM l`, now, reservation)})
            SELECT l.*, g.id AS __log, ${jobColumns}, seen.impls AS __impls
            FROM seen LEFT JOIN l ON true LEFT JOIN g ON true LEFT JOIN j ON true`;
        } catch (error) {
          reservation?.cancel();
          throw error;
        }
        remember(request.resourceType, row!.__impls);
        if (row!.__log !== null) {
          const { __impls: _, ...columns } = row!;
          const { lease, logId, job } = splitRow(columns);
          const after = new AfterCommit();
          publishLog(after, { leaseId: lease.id }, logId!, { lease: lease.status });
          if (!startOrCancel(reservation, 'LEASE_UPDATE', lease.id, job, new CarriedCommit(after, deps))) {
            after.jobScheduled(now);
            after.flush(deps);
          }
          return ok(lease);
        }
        reservation?.cancel();
        seen = row!.__impls;
        fresh = true;
      }
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
      // One statement, as for a request: the visibility check, the RELEASE command, its log and
      // the lease's job (claimed here when a worker slot is free), written only if the lease may
      // be released by this actor.
      const now = deps.options.clock();
      const after = new AfterCommit();
      const reservation = reserveLocalSlot(db);
      let row: (LeaseRow & { visible: boolean }) | undefined;
      try {
        [row] = await (
          await rawQueries(db)
        ).$queryRaw<(LeaseRow & { visible: boolean })[]>`
          WITH l AS (
            SELECT *, ${leaseWritableSql(actor)} AS visible
            FROM "Lease" WHERE id = ${leaseId}),
          ok AS (SELECT id FROM l WHERE visible AND status::text = ANY(${releasable}::text[])),
          c AS (
            INSERT INTO "Command" (kind, "targetLeaseId", "authorId", "createdAt")
            SELECT 'RELEASE', id, ${actor.principalId}::int, ${now}::timestamp FROM ok),
          g AS (
            INSERT INTO "Log" (type, data, "createdAt", "leaseId")
            SELECT 'lease-release-requested', ${JSON.stringify({ authorId: actor.principalId })}::jsonb,
                   ${now}::timestamp, id
            FROM ok RETURNING id),
          j AS (${upsertJobSql('LEASE_UPDATE', Prisma.sql`SELECT id FROM ok`, now, reservation)})
          SELECT l.*, g.id AS __log, ${jobColumns} FROM l LEFT JOIN g ON true LEFT JOIN j ON true`;
      } catch (error) {
        reservation?.cancel();
        throw error;
      }
      if (!row) {
        reservation?.cancel();
        return fail(notFound('lease', leaseId));
      }
      const { visible, ...columns } = row;
      const { lease, logId, job } = splitRow(columns);
      if (!visible || logId === null) {
        reservation?.cancel();
        return fail(visible ? illegalRelease(lease) : may(actor, { kind: 'lease.release', lease })!);
      }
      publishLog(after, { leaseId }, logId, { lease: lease.status });
      // Published at once, not carried by the job as a request's event is: a release's subscribers
      // wait for this one (it acknowledges what they asked), and with many of them, holding it for
      // the update's commit delayed them more than the one event less saved (measured on the
      // bench's fan-out row).
      if (!startOrCancel(reservation, 'LEASE_UPDATE', leaseId, job)) after.jobScheduled(now);
      after.flush(deps);
      return ok(lease);
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
