import type { Lease, Resource } from '../generated/prisma/client.js';
import { PermanentFailure, TemporaryFailure } from '../failures.js';
import { activateBox } from './external/activate.js';
import { BOX_KEY, boxAttributes, boxRecord } from './external/box.js';
import { externalConfig, externalLeaseAttributes, type ExternalConfig } from './external/config.js';
import { connect } from './external/connect.js';
import { satisfies } from './external/matching.js';
import { requestIdOf } from './external/protocol.js';
import { sweepLeaks } from './external/sweep.js';
import { defineImplementation, WARM_LEASE_ID, type BlueprintOf } from './implementation.js';

// Boxes (machines, clusters, anything) built by a provisioner reached over HTTP; the protocol is
// docs/external-provisioner.md. Nothing here talks to the provisioner inside a transaction: a box
// is planned in the allocator's transaction and asked for in the setup step that follows it.

type External = BlueprintOf<ExternalConfig>;

const wanted = (lease: Lease) => (lease.attributes ?? {}) as Record<string, unknown>;

/** Exclusive use of a box, when it serves one lease at a time. */
export const externalLeaseSlotKey = (resourceId: number) => `external.lease(${resourceId})`;

/**
 * One mystery box opening at a time, even when allocators race past canAllocateNow together: each
 * box takes the key named after the newest box of its blueprint at that moment (ids only grow).
 * Racers that read the same newest box want the same key, so all but one lose it and retry; one
 * that read later sees the winner's box pending and backs off. No box can hold the key of the
 * newest box (it would be newer still), so the next round never finds its key taken.
 */
export const mysteryBoxSlotKey = (blueprintId: number, newestId: number) =>
  `external.mystery(${blueprintId}).after(${newestId})`;

/** Whether the box could serve the lease, going by what is known of it so far. */
function fits(blueprint: External, resource: Resource, lease: Lease): boolean {
  if (resource.status === 'PENDING') {
    // A pending box is only known by what it was asked to be, and a mystery box not even by that.
    return !blueprint.config.mysteryBox && satisfies(boxRecord(resource).requested, wanted(lease));
  }
  return satisfies(boxAttributes(resource.attributes), wanted(lease));
}

/**
 * A lease that keeps getting boxes it cannot use breaks instead of buying boxes forever: after
 * `maxFailuresPerLease` boxes built for it broke, or `maxResourcesPerLease` were built at all.
 */
function refuseEndlessAllocation(blueprint: External, built: Resource[]): void {
  const broken = built.filter((r) => r.statusReason === 'resource-broken');
  const { maxFailuresPerLease, maxResourcesPerLease } = blueprint.config;
  if (broken.length >= maxFailuresPerLease)
    throw new PermanentFailure(
      `the provisioner failed ${broken.length} box(es) built for this lease; see the log of resource ${broken.at(-1)!.id}`,
    );
  if (built.length >= maxResourcesPerLease)
    throw new PermanentFailure(`${built.length} boxes were built for this lease and none of them satisfies it`);
}

export const external = defineImplementation<ExternalConfig>({
  key: 'external',
  resourceType: 'machine',
  configSchema: externalConfig,
  secretConfigKeys: ['token'],
  leaseAttributesSchema: externalLeaseAttributes,
  description:
    'Boxes from a provisioner reached over HTTP (docs/external-provisioner.md): a cloud or a cluster behind a small service.',

  // What a box can be is the provisioner's to say: only an open box tells.
  canEverAllocate: () => true,

  async canAllocateNow(blueprint, _lease, queries) {
    if (!blueprint.config.mysteryBox) return true;
    return (await queries.resources(blueprint.id, ['PENDING'])).length === 0;
  },

  async allocateResource(blueprint, lease, queries) {
    refuseEndlessAllocation(blueprint, await queries.resourcesBuiltFor(blueprint.id, lease.id));
    const { mysteryBox } = blueprint.config;
    // canAllocateNow looked in an earlier statement: a racer's box may have committed since. The
    // newest box and the pending count come from one snapshot: read apart, a racer's box committed
    // between them would be the newest without being seen pending, and both boxes would open.
    const frontier = mysteryBox ? await queries.resourceFrontier(blueprint.id) : { newestId: 0, pendingCount: 0 };
    if (frontier.pendingCount > 0) throw new TemporaryFailure('another box of this blueprint is being opened');
    return {
      name: lease.id === WARM_LEASE_ID ? `${blueprint.name} warm box` : `${blueprint.name} box for lease ${lease.id}`,
      attributes: { [BOX_KEY]: { requested: wanted(lease) } },
      slotLocks: mysteryBox ? [mysteryBoxSlotKey(blueprint.id, frontier.newestId)] : [],
      activation: 'later',
    };
  },

  activateResource: (blueprint, resource, runtime) => activateBox(blueprint, resource, runtime),

  async canAcquireLeaseOn(blueprint, resource, lease, queries) {
    if (!fits(blueprint, resource, lease)) return false;
    const cap = blueprint.config.maxLeasesPerResource;
    return cap === 1 || (await queries.liveLeaseCount(resource.id)) < cap;
  },

  acquireLease: (blueprint, resource) => ({
    slotLocks: blueprint.config.maxLeasesPerResource === 1 ? [externalLeaseSlotKey(resource.id)] : [],
  }),

  // Exclusive boxes: a busy one is no use, build another. Shared ones: use the capacity already
  // paid for before asking the provisioner for more.
  shouldAllocateSupplementalResource: (blueprint) => blueprint.config.maxLeasesPerResource === 1,

  async teardownResource(blueprint, resource, runtime) {
    const client = connect(blueprint.config, runtime.signal);
    const known = boxRecord(resource).providerId;
    // A box that never opened has no id on record: ask for whatever its request created.
    const requestId = requestIdOf(blueprint.config.namespace, blueprint.id, resource.id);
    const ids = known ? [known] : (await client.list({ requestId })).map((box) => box.id);
    for (const providerId of ids) {
      await client.delete(providerId);
      await runtime.log(`provisioner box ${providerId} destroyed`, { providerId });
    }
  },

  async checkResource(blueprint, resource, runtime) {
    const { providerId } = boxRecord(resource);
    if (!providerId) return;
    const box = await connect(blueprint.config, runtime.signal).get(providerId);
    if (!box) throw new PermanentFailure(`the provisioner no longer knows box ${providerId}`);
    if (box.status === 'failed')
      throw new PermanentFailure(`provisioner box ${providerId} failed: ${box.message ?? 'no reason given'}`);
  },

  leaseInterfaces: (_blueprint, resource) => ({
    external: { id: boxRecord(resource).providerId ?? null, ...boxAttributes(resource.attributes) },
  }),

  maintenance: {
    intervalMs: (blueprint) => blueprint.config.leakSweepIntervalMs,
    run: sweepLeaks,
  },
});
