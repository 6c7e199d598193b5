import type { z } from 'zod';
import type { Blueprint, Lease, Resource, ResourceStatus } from '../generated/prisma/client.js';
import type { CommandResult, CommandSpec, HostTransport, TransportFactory } from '../transports/transport.js';
import type { TransportUse } from '../transports/config-problems.js';

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
  /**
   * One attribute of each of this blueprint's resources in the given statuses, as text (missing:
   * left out): what a large pool needs to know of its resources without reading every row.
   */
  attributeValues(blueprintId: number, statuses: readonly ResourceStatus[], attribute: string): Promise<string[]>;
  /**
   * How many of this blueprint's resources are live (not DESTROYED), from a count the database
   * keeps as transactions commit: one row, whatever the pool's size. This transaction's own
   * changes are not in it yet (a resource it built is not counted until it commits).
   */
  liveResourceCount(blueprintId: number): Promise<number>;
  /** Leases acquired or active on a resource. */
  liveLeaseCount(resourceId: number): Promise<number>;
  /** Every resource this blueprint ever built for the lease, whatever its status. */
  resourcesBuiltFor(blueprintId: number, leaseId: number): Promise<Resource[]>;
  /**
   * The id of the newest resource this blueprint ever built (0 when none) and how many of its
   * resources are PENDING, read together (one snapshot: a racer's resource is in both or neither).
   */
  resourceFrontier(blueprintId: number): Promise<{ newestId: number; pendingCount: number }>;
}

/** A lease a resource holds for itself (a working copy's host lease). */
export interface OwnedLeaseRequest {
  resourceType: string;
  attributes?: Record<string, unknown>;
  /** Only these blueprints (empty or absent: any the owning blueprint is authorized on). */
  blueprintIds?: number[];
}

/** Leases held by one resource, owned and authorized by its blueprint's principal. */
export interface OwnedLeases {
  /** Every lease this resource has requested, oldest first, whatever its status. */
  list(): Promise<Lease[]>;
  /** Requests a new lease; the allocator updates the owning resource on each of its transitions. */
  request(input: OwnedLeaseRequest): Promise<Lease>;
  /** Asks one of them to release (a command; a no-op when it is already ending). */
  release(leaseId: number): Promise<void>;
  /** Why one of them broke, as the allocator logged it; null when it did not break. */
  whyBroken(leaseId: number): Promise<LeaseBreak | null>;
}

/** The allocator's verdict on a broken lease. */
export interface LeaseBreak {
  /** e.g. 'no-authorizations', 'cannot-ever-allocate', 'resource-broken'. */
  reason: string;
  message: string;
  /** The blueprints the verdict is about (those it is not authorized on), when there are some. */
  blueprintIds?: number[];
}

/** Runs commands through what a lease offers (its host's transport). */
export interface CommandRunner {
  /** The transport of an ACTIVE lease (throws PermanentFailure when it has none or is not active). */
  transportOf(leaseId: number, options?: CommandRunnerOptions): Promise<LeaseTransport>;
  run(leaseId: number, spec: CommandSpec, options?: CommandRunnerOptions): Promise<CommandResult>;
}

export interface CommandRunnerOptions {
  /**
   * Also through a lease that has ended, as long as it was granted a resource: for a resource
   * cleaning up after itself on a host whose lease ended first (its host was released), so that
   * nothing is left on disk. Never for users' commands.
   */
  ended?: boolean;
}

/** A transport and the directory commands of one lease run in. */
export interface LeaseTransport {
  transport: HostTransport;
  cwd?: string;
}

/**
 * What hooks that run OUTSIDE transactions (setup, teardown, checks, maintenance) may do besides
 * return a verdict. Every write goes through the allocator, so the single-writer rule holds.
 */
export interface BlueprintRuntime {
  /** Adds a progress entry to the log of the object being worked on (published to subscribers). */
  log(message: string, data?: Record<string, unknown>): Promise<void>;
  /** The resource's own leases (empty handle outside resource hooks: list() is []). */
  leases: OwnedLeases;
  commands: CommandRunner;
  /** Opens a host's transport (host-pool bindings). */
  transports: TransportFactory;
  /** Aborted when the process shuts down: long work should stop and be retried elsewhere. */
  signal: AbortSignal;
}

/** What a blueprint's periodic maintenance (leak sweep, warm pool) may look at. */
export interface MaintenanceRuntime {
  /** This blueprint's resources in the given statuses. */
  resources(statuses: readonly ResourceStatus[]): Promise<Resource[]>;
  /** Adds an entry to the blueprint's log. */
  log(message: string, data?: Record<string, unknown>): Promise<void>;
  signal: AbortSignal;
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

/** A name in a blueprint's config that must exist elsewhere, checked when the config is saved. */
export type ConfigReference =
  | { path: (string | number)[]; kind: 'credential'; name: string }
  | { path: (string | number)[]; kind: 'blueprint'; id: number; resourceType?: string };

/** One blueprint's answer to "why can you never serve this lease?". */
export interface CannotAllocateReason {
  /** The lease attribute (or config rule) that did not match, when there is one to name. */
  attribute?: string;
  message: string;
}

export interface BlueprintImplementation<Config = unknown> {
  /** Stable name stored in Blueprint.implementation. */
  key: string;
  /** The resource type it yields unless a blueprint names another. */
  resourceType: string;
  configSchema: z.ZodType<Config>;
  /** Top-level config keys that hold secrets: write-only, the API never returns them. */
  secretConfigKeys?: readonly string[];
  description?: string;
  /**
   * The lease attributes this implementation understands. A lease request for a type that only
   * implementations with a schema yield must pass one of their schemas, or it is refused before it
   * exists (instead of breaking later, or never matching anything, on a typo or a wrong type).
   */
  leaseAttributesSchema?: z.ZodType;

  /**
   * The stored credentials and other blueprints the config names (paths relative to the config).
   * A config naming one that does not exist is refused when it is saved, instead of failing the
   * first lease that needs it.
   */
  references?(config: Config): ConfigReference[];
  /**
   * The host transports the config names (paths relative to the config). One that could never
   * run a command (an ssh user or address ssh would misread, `local` on a server that forbids it)
   * is refused when the config is saved, instead of failing the first command.
   */
  transports?(config: Config): TransportUse[];
  /**
   * Why canEverAllocate said no, for the lease's status reason and the dry run: which attribute
   * or rule did not match. Only asked after canEverAllocate returned false.
   */
  explainCannotEverAllocate?(blueprint: BlueprintOf<Config>, lease: Lease): CannotAllocateReason;

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
  activateResource?(
    blueprint: BlueprintOf<Config>,
    resource: Resource,
    runtime: BlueprintRuntime,
  ): Promise<ActivationResult>;
  /**
   * Teardown of a RELEASED or BROKEN resource before it is DESTROYED (remove a directory, ask a
   * provisioner to destroy a machine). Runs OUTSIDE any transaction and lock and may run more than
   * once, so it must be idempotent. TemporaryFailure retries with backoff; after
   * `teardownAttempts` failures (or a PermanentFailure) the resource is destroyed anyway and the
   * failure logged, so that a dead host never blocks the rows (leak sweeps are the backstop).
   * The resource's own leases are released by the allocator after this returns.
   */
  teardownResource?(blueprint: BlueprintOf<Config>, resource: Resource, runtime: BlueprintRuntime): Promise<void>;
  canAcquireLeaseOn(
    blueprint: BlueprintOf<Config>,
    resource: Resource,
    lease: Lease,
    queries: AllocationQueries,
  ): Promise<boolean>;
  acquireLease(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): LeasePlan;
  /** Called when the lease's resource is ACTIVE; 'wait' keeps the lease ACQUIRED and asks again later. */
  activateLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): ActivationResult;
  /**
   * Long setup of an ACQUIRED lease on an ACTIVE resource (check out a commit), run OUTSIDE any
   * transaction and lock, after activateLease said 'active' (or instead of it). The lease's slot
   * locks are held meanwhile. Idempotent. TemporaryFailure retries with backoff, PermanentFailure
   * (or any other error) breaks the lease with its message.
   */
  setupLease?(
    blueprint: BlueprintOf<Config>,
    resource: Resource,
    lease: Lease,
    runtime: BlueprintRuntime,
  ): Promise<ActivationResult>;
  didReleaseLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Promise<void>;
  destroyLease?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Promise<void>;
  destroyResource?(blueprint: BlueprintOf<Config>, resource: Resource): Promise<void>;
  /**
   * Health check of an ACTIVE resource, run on every update of it and every
   * `healthCheckIntervalMs`. Runs OUTSIDE any transaction and lock, like activate-resource.
   * Throw PermanentFailure when the resource is gone or broken for good: it breaks, and so does
   * every lease on it. TemporaryFailure (or any other error) is logged and checked again later.
   */
  checkResource?(blueprint: BlueprintOf<Config>, resource: Resource, runtime: BlueprintRuntime): Promise<void>;
  /**
   * Whether the config has taken this resource out of service (a host-pool binding marked in
   * maintenance). The allocator drains it when the config is saved (no new lease; its leases run
   * to their end) and undrains it once this says false again. `retired`: the config no longer
   * describes it at all (a binding removed): drained, and released once its leases have ended.
   * Absent: never.
   */
  inMaintenance?(blueprint: BlueprintOf<Config>, resource: Resource): boolean | 'retired';
  /** True when a busy resource should make the allocator build another instead of sharing it. */
  shouldAllocateSupplementalResource(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): boolean;
  /** What a lease on this resource offers its owner (e.g. how to reach a host). */
  leaseInterfaces?(blueprint: BlueprintOf<Config>, resource: Resource, lease: Lease): Record<string, unknown>;
  /**
   * How commands reach what a lease on this resource offers (a host's ssh or local transport; a
   * working copy's host, in its directory). Absent: leases on it cannot run commands.
   */
  leaseTransport?(
    blueprint: BlueprintOf<Config>,
    resource: Resource,
    lease: Lease,
    runtime: BlueprintRuntime,
  ): Promise<LeaseTransport>;
  /**
   * Periodic blueprint-wide work outside transactions (a provisioner's leak sweep, a warm pool),
   * run by one process at a time every `intervalMs` while the blueprint exists and is enabled.
   */
  maintenance?: {
    intervalMs(blueprint: BlueprintOf<Config>): number;
    run(blueprint: BlueprintOf<Config>, runtime: MaintenanceRuntime): Promise<void>;
  };
}

/** Erases the config type so that implementations of different configs share one registry. */
export function defineImplementation<Config>(
  implementation: BlueprintImplementation<Config>,
): BlueprintImplementation<unknown> {
  return implementation as unknown as BlueprintImplementation<unknown>;
}

/**
 * The lease id a blueprint's warm pool builds for (none: lease ids start at 1). allocateResource
 * and the other hooks get a lease of this id asking for the blueprint's warm attributes.
 */
export const WARM_LEASE_ID = 0;

/** The key naming one unit of a blueprint's concurrent-resource limit. */
export const limitSlotKey = (blueprintId: number, unit: number) => `allocator(${blueprintId}).limit(${unit})`;
