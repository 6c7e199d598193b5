import type { z } from 'zod';
import type { Blueprint, Lease, Resource, ResourceStatus } from '../generated/prisma/client.js';

// The plug-in interface of drydock-spec.md ("Blueprint implementation interface"). An
// implementation decides *what* can be built and shared; the allocator decides *when*, takes the
// slot locks it names, and writes every status. Hooks run inside the allocator's transaction
// unless marked otherwise, so they must be quick and must not write to the database themselves.

/** A blueprint row with its config already validated by the implementation's schema. */
export type BlueprintOf<Config> = Omit<Blueprint, 'config'> & { config: Config };

/** Read-only questions a hook may ask about the world, answered inside the allocator's transaction. */
export interface AllocationQueries {
  /** This blueprint's resources in the given statuses. */
  resources(blueprintId: number, statuses: readonly ResourceStatus[]): Promise<Resource[]>;
  /** Leases acquired or active on a resource. */
  liveLeaseCount(resourceId: number): Promise<number>;
}

/** What allocate-resource decided: the allocator creates the row and takes the locks. */
export interface ResourcePlan {
  name: string;
  attributes: Record<string, unknown>;
  /** Keys the resource holds for its whole life (e.g. one per pool binding). */
  slotLocks: string[];
  /** 'now': open immediately. 'later': stays PENDING until activate-resource says it is ready. */
  activation: 'now' | 'later';
}

/** What acquire-lease decided. */
export interface LeasePlan {
  /** Keys the lease holds while on the resource (e.g. exclusive use). */
  slotLocks: string[];
}

/** Result of a setup step: ready (with attributes learned while opening it), or look again later. */
export type ActivationResult =
  { status: 'active'; attributes?: Record<string, unknown> } | { status: 'wait'; retryAfterMs?: number };

export interface BlueprintImplementation<Config = unknown> {
  /** Stable name stored in Blueprint.implementation. */
  key: string;
  /** The resource type it yields unless a blueprint names another. */
  resourceType: string;
  configSchema: z.ZodType<Config>;
  description?: string;
  /**
   * The lease attributes this implementation understands. A lease request for a type that only
   * implementations with a schema yield must pass one of their schemas, or it is refused before it
   * exists (instead of breaking later, or never matching anything, on a typo or a wrong type).
   */
  leaseAttributesSchema?: z.ZodType;

  /** Cheap pre-filter before any blueprint is looked at (e.g. the lease asks for an unknown interface). */
  canAnyBlueprintEverAllocate?(lease: Lease): boolean;
  /** Could this blueprint satisfy the lease if it had all the capacity in the world? */
  canEverAllocate(blueprint: BlueprintOf<Config>, lease: Lease): boolean;
  /** Is there capacity to build a new resource for this lease right now? */
  canAllocateNow(blueprint: BlueprintOf<Config>, lease: Lease, queries: AllocationQueries): Promise<boolean>;
  allocateResource(blueprint: BlueprintOf<Config>, lease: Lease, queries: AllocationQueries): Promise<ResourcePlan>;
  /**
   * Setup step of an "activate later" resource. Runs OUTSIDE any transaction and lock, so it may
   * take long or call out; it may run more than once for one resource (after a crash), so it must
   * be idempotent. Throw TemporaryFailure to retry, PermanentFailure to break the resource.
   */
  activateResource?(blueprint: BlueprintOf<Config>, resource: Resource): Promise<ActivationResult>;
  canAcquireLeaseOn(
    blueprint: BlueprintOf<Config>,
    resource: Resource,
    lease: Lease,
    queries: AllocationQueries,
  ): Promise<boolean>;
  acquireLease(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): LeasePlan;
  /** Called when the lease's resource is ACTIVE; 'wait' keeps the lease ACQUIRED and asks again later. */
  activateLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): ActivationResult;
  didReleaseLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Promise<void>;
  destroyLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Promise<void>;
  destroyResource?(blueprint: BlueprintOf<Config>, resource: Resource): Promise<void>;
  /**
   * Health check of an ACTIVE resource, run on every update of it and every
   * `healthCheckIntervalMs`. Runs OUTSIDE any transaction and lock, like activate-resource.
   * Throw PermanentFailure when the resource is gone or broken for good: it breaks, and so does
   * every lease on it. TemporaryFailure (or any other error) is logged and checked again later.
   */
  checkResource?(blueprint: BlueprintOf<Config>, resource: Resource): Promise<void>;
  /** True when a busy resource should make the allocator build another instead of sharing it. */
  shouldAllocateSupplementalResource(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): boolean;
  /** What a lease on this resource offers its owner (e.g. how to reach a host). */
  leaseInterfaces?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Record<string, unknown>;
}

/** Erases the config type so that implementations of different configs share one registry. */
export function defineImplementation<Config>(
  implementation: BlueprintImplementation<Config>,
): BlueprintImplementation<unknown> {
  return implementation as unknown as BlueprintImplementation<unknown>;
}

/** The key naming one unit of a blueprint's concurrent-resource limit. */
export const limitSlotKey = (blueprintId: number, unit: number) => `allocator(${blueprintId}).limit(${unit})`;
