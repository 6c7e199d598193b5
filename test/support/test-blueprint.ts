import { z } from 'zod';
import type { Lease, Resource } from '../../src/generated/prisma/client.js';
import { PermanentFailure, TemporaryFailure } from '../../src/failures.js';
import { defineImplementation, type BlueprintImplementation } from '../../src/blueprints/implementation.js';

// A blueprint the tests steer: how many resources, exclusive or shared, open now or later, fail
// temporarily or permanently, or behave as the seed's "mystery box". Static behaviour is config
// (so that child processes see it too); failure injection and the activation gate are a control
// object shared with the test in the same process.

export const testBlueprintConfig = z.object({
  maxResources: z.number().int().positive().default(1000),
  /** One lease at a time per resource, through a `test.lease(<resource>)` slot lock. */
  exclusive: z.boolean().default(false),
  activation: z.enum(['now', 'later']).default('now'),
  /** "Later" resources open once this long has passed since they were allocated. */
  activateAfterMs: z.number().int().min(0).default(0),
  /** Only one PENDING resource at a time, no leases on PENDING resources, size known only once open. */
  mysteryBox: z.boolean().default(false),
  /** Size of the n-th box this blueprint opens (the last repeats); leases ask for `minSize`. */
  boxSizes: z.array(z.number().int().positive()).default([1]),
  /** can-ever-allocate says no. */
  never: z.boolean().default(false),
  /** Resources share out attributes: a lease's `label` must equal the blueprint's. */
  label: z.string().optional(),
  /** At most this many live leases per (shared) resource. */
  leasesPerResource: z.number().int().positive().optional(),
});

/** The lease attributes the test blueprint understands; anything else is refused at request time. */
export const testLeaseAttributes = z.strictObject({
  minSize: z.number().int().positive().optional(),
  label: z.string().optional(),
});

export type TestBlueprintConfig = z.infer<typeof testBlueprintConfig>;

export class TestBlueprintControl {
  /** Consumed one per allocate-resource call. */
  allocateFailures: ('temporary' | 'permanent')[] = [];
  /** Consumed one per activate-resource call. */
  activateFailures: ('temporary' | 'permanent')[] = [];
  /** By resource id, consumed one per health check of that resource; none left means healthy. */
  readonly checkFailures = new Map<number, ('temporary' | 'permanent')[]>();
  /** When set, health checks wait for it before giving their verdict (a slow probe). */
  checkGate: Promise<void> | null = null;
  /** When set, "later" resources open only once their id is in `opened`. */
  gated = false;
  readonly opened = new Set<number>();
  /** Calls per hook, for assertions. */
  readonly calls: Record<string, number> = {};
  /** Setup steps running right now (to prove that they overlap other work). */
  activeSetups = 0;
  /** Every setup step waits this long (a slow cloud API). */
  setupDelayMs = 0;

  /** Hooks that never return once entered (a process to be killed in the middle of its work). */
  readonly blockIn = new Set<'allocateResource' | 'activateResource'>();
  /** Awaited by every allocate-resource call (a change another transaction commits meanwhile). */
  onAllocate: ((leaseId: number) => Promise<void>) | null = null;
  /** Awaited by every can-acquire-lease-on call, with the lease's id (a change committed meanwhile). */
  onAcquireCheck: ((leaseId: number) => Promise<void>) | null = null;
  /** Told when a hook blocks, so that a test knows when to kill. */
  onBlocked: (hook: string, detail: number) => void = () => {};

  /**
   * The next allocate-resource call stops there, inside its pass's transaction: `paused` resolves
   * once it has, and it goes on when `resume` is called.
   */
  pauseNextAllocate(): { paused: Promise<void>; resume: () => void } {
    let paused!: () => void;
    const reached = new Promise<void>((resolve) => (paused = resolve));
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    this.onAllocate = async () => {
      this.onAllocate = null;
      paused();
      await resumed;
    };
    return { paused: reached, resume };
  }

  count(hook: string): void {
    this.calls[hook] = (this.calls[hook] ?? 0) + 1;
  }

  async maybeBlock(hook: 'allocateResource' | 'activateResource', detail: number): Promise<void> {
    if (!this.blockIn.has(hook)) return;
    this.onBlocked(hook, detail);
    await new Promise<never>(() => {});
  }
}

const sizeOf = (resource: Resource) => Number((resource.attributes as { size?: number }).size ?? 0);
const minSize = (lease: Lease) => Number((lease.attributes as { minSize?: number }).minSize ?? 0);
const labelOf = (lease: Lease) => (lease.attributes as { label?: string }).label;

function fail(kind: 'temporary' | 'permanent' | undefined, what: string): void {
  if (kind === 'temporary') throw new TemporaryFailure(`${what} failed (test: temporary)`, 20);
  if (kind === 'permanent') throw new PermanentFailure(`${what} failed (test: permanent)`);
}

export function createTestBlueprint(
  control: TestBlueprintControl = new TestBlueprintControl(),
  key = 'test',
): BlueprintImplementation {
  return defineImplementation<TestBlueprintConfig>({
    key,
    resourceType: 'test-slot',
    configSchema: testBlueprintConfig,
    leaseAttributesSchema: testLeaseAttributes,

    canEverAllocate: (blueprint, lease) =>
      !blueprint.config.never && (labelOf(lease) === undefined || labelOf(lease) === blueprint.config.label),

    async canAllocateNow(blueprint, _lease, queries) {
      control.count('canAllocateNow');
      const live = await queries.resources(blueprint.id, ['PENDING', 'ACTIVE']);
      if (blueprint.config.mysteryBox && live.some((r) => r.status === 'PENDING')) return false;
      return live.length < blueprint.config.maxResources;
    },

    async allocateResource(blueprint, lease, queries) {
      control.count('allocateResource');
      await control.maybeBlock('allocateResource', lease.id);
      await control.onAllocate?.(lease.id);
      fail(control.allocateFailures.shift(), 'allocate');
      const existing = await queries.resources(blueprint.id, ['PENDING', 'ACTIVE', 'RELEASED', 'BROKEN', 'DESTROYED']);
      return {
        name: `${blueprint.name}-${existing.length}`,
        attributes: { box: existing.length, ...(blueprint.config.label ? { label: blueprint.config.label } : {}) },
        slotLocks: [],
        activation: blueprint.config.mysteryBox ? 'later' : blueprint.config.activation,
      };
    },

    async activateResource(blueprint, resource) {
      control.count('activateResource');
      await control.maybeBlock('activateResource', resource.id);
      control.activeSetups++;
      try {
        if (control.setupDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, control.setupDelayMs));
        fail(control.activateFailures.shift(), 'activate');
        if (control.gated && !control.opened.has(resource.id)) return { status: 'wait', retryAfterMs: 20 };
        const ready = resource.createdAt.getTime() + blueprint.config.activateAfterMs;
        if (Date.now() < ready) return { status: 'wait', retryAfterMs: ready - Date.now() };
        const box = Number((resource.attributes as { box?: number }).box ?? 0);
        const sizes = blueprint.config.boxSizes;
        return { status: 'active', attributes: { size: sizes[Math.min(box, sizes.length - 1)] } };
      } finally {
        control.activeSetups--;
      }
    },

    async canAcquireLeaseOn(blueprint, resource, lease, queries) {
      await control.onAcquireCheck?.(lease.id);
      if (blueprint.config.mysteryBox && resource.status === 'PENDING') return false;
      if (blueprint.config.mysteryBox && sizeOf(resource) < minSize(lease)) return false;
      const cap = blueprint.config.leasesPerResource;
      return cap === undefined || (await queries.liveLeaseCount(resource.id)) < cap;
    },

    acquireLease: (blueprint, resource) => ({
      slotLocks: blueprint.config.exclusive ? [`test.lease(${resource.id})`] : [],
    }),

    didReleaseLease: async () => void control.count('didReleaseLease'),
    destroyLease: async () => void control.count('destroyLease'),
    destroyResource: async () => void control.count('destroyResource'),

    async checkResource(_blueprint, resource) {
      control.count('checkResource');
      if (control.checkGate) await control.checkGate;
      fail(control.checkFailures.get(resource.id)?.shift(), `health check of resource ${resource.id}`);
    },

    shouldAllocateSupplementalResource: () => true,

    leaseInterfaces: (_blueprint, resource) => ({ test: { resourceId: resource.id } }),
  });
}
