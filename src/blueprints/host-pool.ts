import { z } from 'zod';
import { PermanentFailure, TemporaryFailure } from '../failures.js';
import type { Lease, Resource } from '../generated/prisma/client.js';
import { transportConfig, type TransportConfig } from '../transports/config.js';
import { configText, fieldOf, missingOr } from '../config-fields.js';
import { defineImplementation, type AllocationQueries, type BlueprintOf } from './implementation.js';

// The seed's Almanac-service blueprint: a fixed pool of hosts named by configuration. Each
// binding (a host's address and port within a service) becomes at most one resource, guarded by
// a binding slot lock; hosts open immediately and are shared by any number of leases.

/** The longest each string of a host-pool config may be (docs/blueprints.md lists them). */
export const HOST_POOL_LIMITS = {
  /** Of a service's or a binding's name; `service/binding` names the host's resource. */
  name: 200,
  /** DNS's longest host name; an IPv4 or IPv6 address is shorter. */
  address: 253,
  attributeName: 200,
  /** Of a string value; a lease's attribute values have the same default bound. */
  attributeValue: 1_024,
} as const;

const attributeValue = z.union(
  [
    z.string().max(HOST_POOL_LIMITS.attributeValue, {
      error: (issue) => `${fieldOf(issue)} must have at most ${HOST_POOL_LIMITS.attributeValue} characters`,
    }),
    z.number(),
    z.boolean(),
  ],
  { error: (issue) => `${fieldOf(issue)} must be a string, number or boolean` },
);

const { attributeName } = HOST_POOL_LIMITS;
const attributes = z.record(z.string().max(attributeName), attributeValue, {
  error: (issue) =>
    issue.code === 'invalid_key'
      ? // The path ends in the key itself: the message names the object, not the key again.
        `${fieldOf({ path: issue.path?.slice(0, -1) })} has an attribute name longer than ${attributeName} characters`
      : `${fieldOf(issue)} must be an object of attribute names to strings, numbers or booleans`,
});

const binding = z.strictObject({
  name: configText(HOST_POOL_LIMITS.name, "the binding's name, unique within its service"),
  address: configText(HOST_POOL_LIMITS.address, "the host's name or IP address"),
  port: z.number().int().min(1).max(65_535),
  attributes: attributes.default({}),
  enabled: z.boolean().default(true),
  /** Out of service for a while: its host is drained (leases on it run to their end) until cleared. */
  maintenance: z.boolean().default(false),
  /** How commands reach the host; without it, leases on the host cannot run commands. */
  transport: transportConfig.optional(),
});

const service = z.strictObject({
  name: configText(HOST_POOL_LIMITS.name, "the service's name"),
  bindings: z
    .array(binding, { error: missingOr('a list of bindings') })
    .min(1, { error: (issue) => `${fieldOf(issue)} must list at least one binding` }),
});

export const hostPoolConfig = z
  .strictObject(
    {
      services: z
        .array(service, { error: missingOr('a list of services') })
        .min(1, { error: (issue) => `${fieldOf(issue)} must list at least one service` }),
    },
    // Unknown keys are worded where every config's are (services/validation.ts).
    {
      error: (issue) =>
        issue.code === 'invalid_type' ? 'the config must be an object with a "services" list' : undefined,
    },
  )
  .superRefine((config, issues) => {
    const seen = new Set<string>();
    config.services.forEach((s, i) =>
      s.bindings.forEach((b, j) => {
        const id = `${s.name}/${b.name}`;
        if (seen.has(id))
          issues.addIssue({
            code: 'custom',
            path: ['services', i, 'bindings', j, 'name'],
            message: `services.${i}.bindings.${j}.name: binding ${id} appears twice`,
          });
        seen.add(id);
      }),
    );
  });

export type HostPoolConfig = z.infer<typeof hostPoolConfig>;
type Binding = z.infer<typeof binding> & { service: string };
type HostPool = BlueprintOf<HostPoolConfig>;

const bindingId = (b: { service: string; name: string }) => `${b.service}/${b.name}`;

/** Bindings are scoped to their blueprint: two pools may reuse a service name without sharing hosts. */
export const bindingSlotKey = (blueprintId: number, id: string) => `host-pool.binding(${blueprintId}/${id})`;

// Built once per loaded blueprint config: the allocator asks on every update, and a pool of
// 10,000 hosts rebuilt per question cost more than the update's statements.
const bindingLists = new WeakMap<object, Binding[]>();

function bindings(blueprint: HostPool): Binding[] {
  let list = bindingLists.get(blueprint.config);
  if (!list) {
    list = blueprint.config.services.flatMap((s) => s.bindings.map((b) => ({ ...b, service: s.name })));
    bindingLists.set(blueprint.config, list);
  }
  return list;
}

/** The first lease attribute the binding does not have, or undefined when it matches. */
function firstMismatch(b: Binding, lease: Lease): string | undefined {
  const wanted = (lease.attributes ?? {}) as Record<string, unknown>;
  return Object.keys(wanted).find((key) => b.attributes[key] !== wanted[key]);
}

const matches = (b: Binding, lease: Lease) => firstMismatch(b, lease) === undefined;

// Bindings by id, built once per loaded blueprint: the allocator asks about every resource of a
// pool in one update, and a linear search per resource made each update O(pool²).
const bindingIndex = new WeakMap<object, Map<string, Binding>>();

function indexOf(blueprint: HostPool): Map<string, Binding> {
  let index = bindingIndex.get(blueprint.config);
  if (!index) {
    index = new Map(bindings(blueprint).map((b) => [bindingId(b), b]));
    bindingIndex.set(blueprint.config, index);
  }
  return index;
}

function bindingOf(blueprint: HostPool, resource: Resource): Binding | undefined {
  const id = (resource.attributes as { binding?: string }).binding;
  return id === undefined ? undefined : indexOf(blueprint).get(id);
}

export const hostPool = defineImplementation<HostPoolConfig>({
  key: 'host-pool',
  resourceType: 'host',
  configSchema: hostPoolConfig,
  // What bindings are matched against: flat values, compared for equality.
  leaseAttributesSchema: z.record(
    z.string(),
    z.union([z.string(), z.number(), z.boolean()], { error: 'a host attribute is a string, number or boolean' }),
  ),
  description: 'A fixed pool of hosts (the services and bindings of the config); every host is shared.',

  canEverAllocate: (blueprint, lease) => bindings(blueprint).some((b) => b.enabled && matches(b, lease)),

  explainCannotEverAllocate(blueprint, lease) {
    const enabled = bindings(blueprint).filter((b) => b.enabled);
    if (enabled.length === 0) return { message: 'every binding is disabled' };
    // The attribute most bindings fall short on is the one the requester most likely got wrong.
    const misses = new Map<string, Set<string>>();
    for (const b of enabled) {
      const key = firstMismatch(b, lease);
      if (key === undefined) continue;
      const seen = misses.get(key) ?? new Set<string>();
      seen.add(b.attributes[key] === undefined ? '(none)' : JSON.stringify(b.attributes[key]));
      misses.set(key, seen);
    }
    const [attribute, values] = [...misses].sort((a, b) => b[1].size - a[1].size)[0] ?? [];
    if (attribute === undefined) return { message: 'no enabled binding matches' };
    const wanted = JSON.stringify((lease.attributes as Record<string, unknown>)[attribute]);
    const offered = [...values!].slice(0, 5).join(', ');
    return {
      attribute,
      message: `attribute "${attribute}": the lease wants ${wanted}, enabled bindings have ${offered}`,
    };
  },

  references: (config) =>
    config.services.flatMap((s, i) =>
      s.bindings.flatMap((b, j) =>
        b.transport?.kind === 'ssh'
          ? [
              {
                kind: 'credential' as const,
                name: b.transport.credential,
                path: ['services', i, 'bindings', j, 'transport', 'credential'],
              },
            ]
          : [],
      ),
    ),

  transports: (config) =>
    config.services.flatMap((s, i) =>
      s.bindings.flatMap((b, j) => {
        const path = ['services', i, 'bindings', j];
        return b.transport
          ? [
              {
                path: [...path, 'transport'],
                address: b.address,
                addressPath: [...path, 'address'],
                transport: b.transport,
              },
            ]
          : [];
      }),
    ),

  async canAllocateNow(blueprint, lease, queries) {
    return (await firstFreeBinding(blueprint, lease, queries)) !== undefined;
  },

  async allocateResource(blueprint, lease, queries) {
    // Policy: the first free binding in config order, so that hosts fill up predictably.
    const chosen = await firstFreeBinding(blueprint, lease, queries);
    // canAllocateNow looked in an earlier statement: a racing allocator may have taken the last
    // free binding since. A lost race, not a fault: the lease retries.
    if (!chosen) throw new TemporaryFailure('the last free binding was taken by a racing allocation');
    return {
      name: `${chosen.service}/${chosen.name}`,
      attributes: {
        ...chosen.attributes,
        binding: bindingId(chosen),
        service: chosen.service,
        address: chosen.address,
        port: chosen.port,
      },
      slotLocks: [bindingSlotKey(blueprint.id, bindingId(chosen))],
      activation: 'now',
    };
  },

  // Disabled bindings take no new leases; leases already on them stay until released.
  async canAcquireLeaseOn(blueprint, resource, lease) {
    const b = bindingOf(blueprint, resource);
    return b !== undefined && b.enabled && matches(b, lease);
  },

  acquireLease: () => ({ slotLocks: [] }),

  // A host whose binding was removed from the config is retired: commands can no longer reach it.
  inMaintenance: (blueprint, resource) => {
    const binding = bindingOf(blueprint, resource);
    return binding ? binding.maintenance : 'retired';
  },

  // Use every host before doubling up on one.
  shouldAllocateSupplementalResource: () => true,

  leaseInterfaces(blueprint, resource) {
    const attributes = resource.attributes as { address?: string; port?: number };
    const transport = bindingOf(blueprint, resource)?.transport;
    return {
      ssh: { host: attributes.address, port: attributes.port },
      ...(transport ? { transport: describeTransport(transport, attributes) } : {}),
    };
  },

  async leaseTransport(blueprint, resource, _lease, runtime) {
    const b = bindingOf(blueprint, resource);
    if (!b) throw new PermanentFailure(`resource ${resource.id} has no binding in blueprint ${blueprint.id} any more`);
    if (!b.transport) throw new PermanentFailure(`binding ${bindingId(b)} has no transport configured`);
    return { transport: await runtime.transports.open({ address: b.address, port: b.port, transport: b.transport }) };
  },
});

/**
 * What HostTransport.describe() would say, built from the config alone: interfaces are read on
 * every lease query and must not open transports or look up credentials. The credential's name
 * is left out with its secret: which key reaches a host is the operator's business.
 */
function describeTransport(transport: TransportConfig, host: { address?: string; port?: number }) {
  return transport.kind === 'ssh'
    ? { kind: 'ssh', address: host.address, port: host.port, user: transport.user }
    : { kind: 'local' };
}

async function firstFreeBinding(
  blueprint: HostPool,
  lease: Lease,
  queries: AllocationQueries,
): Promise<Binding | undefined> {
  const list = bindings(blueprint);
  // Nothing to look up when no binding could take the lease anyway.
  if (!list.some((b) => b.enabled && matches(b, lease))) return undefined;
  if (await everyBindingTaken(blueprint, queries)) return undefined;
  const values = await queries.attributeValues(blueprint.id, LIVE, 'binding');
  const taken = takenSet(values);
  const shape = JSON.stringify(lease.attributes ?? {});
  const hints = scanHints.get(taken.set) ?? new Map<string, { list: Binding[]; from: number }>();
  scanHints.set(taken.set, hints);
  const hint = hints.get(shape);
  for (let i = hint?.list === list ? hint.from : 0; i < list.length; i++) {
    const b = list[i]!;
    // A binding in maintenance gets no new host either: it would only be drained at once.
    if (b.enabled && !b.maintenance && matches(b, lease) && !taken.set.has(bindingId(b))) {
      hints.set(shape, { list, from: i });
      return b;
    }
  }
  hints.set(shape, { list, from: list.length });
  if (values.length >= list.length) countOrphans(blueprint, values);
  return undefined;
}

const LIVE = ['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN'] as const;

// A full pool is asked for a free binding by every pass that serves it (a used host may take the
// lease, but one nobody uses is preferred), and the list of taken bindings is as long as the pool.
// Each live resource holds one binding, so the count of them the database keeps says the pool is
// full, except for resources left on bindings the config no longer lists: those are counted by
// the last full lookup that found no free binding, and trusted for a while only, since a process
// still on an older config could build on one meanwhile. The kept count leaves out what this
// transaction built: it can only call a full pool not full, and the lookup then answers.
const orphans = new WeakMap<object, { count: number; at: number }>();
const ORPHANS_TRUSTED_MS = 10_000;

function countOrphans(blueprint: HostPool, values: readonly string[]): void {
  const listed = indexOf(blueprint);
  orphans.set(blueprint.config, { count: values.filter((v) => !listed.has(v)).length, at: Date.now() });
}

async function everyBindingTaken(blueprint: HostPool, queries: AllocationQueries): Promise<boolean> {
  const known = orphans.get(blueprint.config);
  if (!known || Date.now() - known.at > ORPHANS_TRUSTED_MS) return false;
  const live = await queries.liveResourceCount(blueprint.id);
  return live - known.count >= bindings(blueprint).length;
}

// A scheduling pass answers the bindings lookup of many leases with one list, to which it appends
// the bindings it takes (AllocationQueries.attributeValues): the set of taken bindings is built
// once per list and extended with what was appended, and the scan for a shape's first free
// binding goes on from where it last stopped (bindings before it stay taken or unsuitable while
// the set only grows), so that filling a pool of N hosts costs N steps, not N² / 2.
const takenSets = new WeakMap<readonly string[], { seen: number; set: Set<string> }>();
const scanHints = new WeakMap<Set<string>, Map<string, { list: Binding[]; from: number }>>();

function takenSet(values: readonly string[]): { set: Set<string> } {
  let entry = takenSets.get(values);
  if (!entry) {
    entry = { seen: 0, set: new Set() };
    takenSets.set(values, entry);
  }
  for (; entry.seen < values.length; entry.seen++) entry.set.add(values[entry.seen]!);
  return entry;
}
