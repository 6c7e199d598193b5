import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { DatabaseKind } from '../../src/db/database.js';
import type { DomainEvent, EventSink } from '../../src/events/domain-events.js';
import type { Lease, LeaseStatus } from '../../src/generated/prisma/client.js';
import type { AllocatorDeps, DeadlockObserver } from '../../src/allocator/context.js';
import type { AllocatorOptions } from '../../src/allocator/options.js';
import type { WorkerOptions } from '../../src/queue/worker.js';
import { createServices, systemActor, type Actor, type Services } from '../../src/services/index.js';
import type { BlueprintImplementation } from '../../src/blueprints/implementation.js';
import { blueprintPrincipalName } from '../../src/allocator/blueprint-principal.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createTestBlueprint, TestBlueprintControl } from './test-blueprint.js';
import { waitFor } from './wait.js';

/** Records every event and lets tests wait for one without polling. */
export class RecordingEvents implements EventSink {
  readonly events: DomainEvent[] = [];
  private readonly listeners = new Set<(event: DomainEvent) => void>();

  publish(event: DomainEvent): void {
    this.events.push(event);
    for (const listener of [...this.listeners]) listener(event);
  }

  subscribe(listener: (event: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Fast timings for tests: short backoff, no grace, quick claim expiry. */
export const fastAllocator: Partial<AllocatorOptions> = {
  backoffBaseMs: 20,
  backoffCapMs: 500,
  // Wake-ups, not this safety net, must move waiting leases: a missed one shows as a slow test.
  idleRetryMs: 5_000,
  reclaimGraceMs: 0,
  activationPollMs: 20,
};
export const fastWorker: Partial<Omit<WorkerOptions, 'workerId'>> = {
  claimTtlMs: 5_000,
  sweepIntervalMs: 1_000,
  retryDelayMs: () => 50,
};

export interface Harness {
  db: TestDatabase;
  events: RecordingEvents;
  control: TestBlueprintControl;
  services: Services;
  system: Actor;
  /** Empties every table, for the next test. */
  reset(): Promise<void>;
  dispose(): Promise<void>;
}

const tables = [
  'Job',
  'ResourceTypeQueue',
  'Quota',
  'Gang',
  'Log',
  'Command',
  'SlotLock',
  'Lease',
  'Resource',
  'Authorization',
  'ApiToken',
  'Blueprint',
  'Principal',
];

export interface HarnessOptions {
  allocator?: Partial<AllocatorOptions>;
  worker?: Partial<Omit<WorkerOptions, 'workerId'>>;
  poolSize?: number;
  /** More implementations next to the built-ins and the test blueprint. */
  implementations?: readonly BlueprintImplementation[];
  transports?: { allowLocal?: boolean; stateDir?: string };
  deadlocks?: DeadlockObserver;
}

export async function createHarness(kind: DatabaseKind, options: HarnessOptions = {}): Promise<Harness> {
  const db = await createTestDatabase(kind, options.poolSize ? { poolSize: options.poolSize } : {});
  const harness = {
    db,
    events: new RecordingEvents(),
    control: new TestBlueprintControl(),
  } as Harness;
  const build = async () => {
    harness.events = new RecordingEvents();
    harness.control = new TestBlueprintControl();
    harness.services = createServices({
      db,
      events: harness.events,
      workerId: 'test',
      implementations: [createTestBlueprint(harness.control), ...(options.implementations ?? [])],
      ...(options.transports ? { transports: options.transports } : {}),
      ...(options.deadlocks ? { deadlocks: options.deadlocks } : {}),
      allocator: { ...fastAllocator, ...options.allocator },
      worker: { ...fastWorker, ...options.worker },
    });
    harness.system = await systemActor(db);
  };
  harness.reset = async () => {
    await db.prisma.$executeRawUnsafe(`TRUNCATE ${tables.map((t) => `"${t}"`).join(', ')} RESTART IDENTITY CASCADE`);
    await build();
  };
  harness.dispose = () => db.dispose();
  await build();
  return harness;
}

/** The worker a describe block's tests run with (see harnessForEachTest). */
export interface TestWorker {
  /** Stops it, for a test that drives updates by hand; the test's end then has nothing to stop. */
  stop(): Promise<void>;
  /** Starts it again after stop(). */
  start(): void;
}

/**
 * The set-up most allocator and blueprint tests share: one harness for the describe block, handed
 * to `use` once made; before each test its tables emptied and a worker of four slots started,
 * after each test the worker stopped. Hooks the block adds itself run after these before a test
 * (the harness is empty and the worker running) and before them after it.
 */
export function harnessForEachTest(
  kind: DatabaseKind,
  use: (h: Harness) => void,
  options: HarnessOptions = {},
): TestWorker {
  let h: Harness;
  let running: (() => Promise<void>) | null = null;
  const worker: TestWorker = {
    start: () => {
      running = h.services.worker.start({ concurrency: 4 }).stop;
    },
    stop: async () => {
      const stop = running;
      running = null;
      await stop?.();
    },
  };
  beforeAll(async () => {
    h = await createHarness(kind, options);
    use(h);
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    await h.reset();
    worker.start();
  });
  afterEach(() => worker.stop());
  return worker;
}

/** Resolves once the lease is in one of `statuses` (checked on every lease event, not by polling). */
export async function waitForLease(
  h: Harness,
  leaseId: number,
  statuses: LeaseStatus[],
  timeoutMs = 30_000,
): Promise<Lease> {
  return new Promise<Lease>((resolve, reject) => {
    let settled = false;
    const check = async () => {
      const lease = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: leaseId } });
      if (!settled && statuses.includes(lease.status)) {
        settled = true;
        cleanup();
        resolve(lease);
      }
    };
    const unsubscribe = h.events.subscribe((event) => {
      if (event.kind === 'lease' && event.leaseId === leaseId) void check().catch(reject);
    });
    const timer = setTimeout(async () => {
      cleanup();
      const lease = await h.db.prisma.lease.findUnique({ where: { id: leaseId } });
      const logs = await h.db.prisma.log.findMany({ where: { leaseId }, orderBy: { id: 'asc' } });
      reject(
        new Error(
          `lease ${leaseId} is ${lease?.status}, not ${statuses.join('/')}, after ${timeoutMs} ms; log: ${logs.map((l) => `${l.type} ${JSON.stringify(l.data)}`).join(' | ')}`,
        ),
      );
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      unsubscribe();
    };
    void check().catch(reject);
  });
}

export function unwrap<T>(result: { ok: true; value: T } | { ok: false; error: { kind: string; message: string } }): T {
  if (!result.ok) throw new Error(`${result.error.kind}: ${result.error.message}`);
  return result.value;
}

export async function logTypes(h: Harness, where: { leaseId?: number; resourceId?: number }): Promise<string[]> {
  const logs = await h.db.prisma.log.findMany({ where, orderBy: { id: 'asc' } });
  return logs.map((l) => l.type);
}

export const hostPoolConfig = (hosts: number, attributes: Record<string, string> = {}) => ({
  services: [
    {
      name: 'build',
      bindings: Array.from({ length: hosts }, (_, i) => ({
        name: `host${i}`,
        address: `10.0.0.${i + 1}`,
        port: 22,
        attributes,
      })),
    },
  ],
});

/**
 * Lets `consumerBlueprintId` lease from `providerBlueprintId` (a working copy from a host pool),
 * the way an operator would: the consumer's principal asks, an administrator authorizes.
 */
export async function authorizeBlueprintOn(h: Harness, consumerBlueprintId: number, providerBlueprintId: number) {
  const principal = await h.db.prisma.principal.findUniqueOrThrow({
    where: { name: blueprintPrincipalName(consumerBlueprintId) },
  });
  const requested = unwrap(
    await h.services.authorizations.request(h.system, { blueprintId: providerBlueprintId, principalId: principal.id }),
  );
  return unwrap(await h.services.authorizations.set(h.system, { authorizationId: requested.id, state: 'AUTHORIZED' }));
}

/**
 * The allocator's dependencies over the harness's database with no worker behind them: every pass
 * and update runs only when a test calls it. `extra` adds per-process hints (idle queues, types).
 */
export function bareAllocatorDeps(h: Harness, extra: Partial<AllocatorDeps> = {}): AllocatorDeps {
  return {
    db: h.db,
    events: h.events,
    registry: h.services.registry,
    options: h.services.options,
    queue: { wake: () => {}, reserve: () => null },
    ...extra,
  };
}

class TurnReleased extends Error {
  constructor(readonly waiting: Promise<unknown>) {
    super('turn released');
  }
}

/**
 * Runs `body` while another transaction holds the turn of the queue `queueId` (its row lock), then
 * releases it and waits for the work `body` returned, which may have been waiting for the turn.
 */
export async function withTurnHeld(
  h: Harness,
  queueId: number,
  body: () => Promise<{ running: Promise<unknown> }>,
): Promise<void> {
  await h.db.prisma
    .$transaction(
      async (tx) => {
        await tx.$queryRaw`SELECT id FROM "ResourceTypeQueue" WHERE id = ${queueId} FOR NO KEY UPDATE`;
        throw new TurnReleased((await body()).running);
      },
      { timeout: 60_000, maxWait: 10_000 },
    )
    .catch(async (error: unknown) => {
      if (!(error instanceof TurnReleased)) throw error;
      await error.waiting;
    });
}

/** Starts `pass` and resolves (with it, still running) once it waits for a turn another holds. */
export async function startWaitingForTurn(h: Harness, pass: () => Promise<void>): Promise<{ running: Promise<void> }> {
  let finished = false;
  const running = pass().then(() => {
    finished = true;
  });
  await waitFor(async () => {
    const [row] = await h.db.prisma.$queryRaw<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND query LIKE '%UPDATE "ResourceTypeQueue" q SET%'`;
    return row!.n > 0 || finished;
  }, 30_000);
  if (finished) throw new Error('the pass finished without waiting for the turn');
  return { running };
}

/**
 * Nothing left for the worker to do now: no job running and none due (a warm pool's look, a
 * pass, an update). What a test checks after it is what the allocator settled on.
 */
export async function noJobDue(h: Harness): Promise<boolean> {
  const busy = await h.db.prisma.job.count({
    where: { OR: [{ lockedBy: { not: null } }, { runAt: { lte: new Date() } }] },
  });
  return busy === 0;
}

/** The blueprint's idle resources, oldest first: ACTIVE, not draining, no live lease on them. */
export function idleResources(h: Harness, blueprintId: number) {
  return h.db.prisma.resource.findMany({
    where: {
      blueprintId,
      status: 'ACTIVE',
      drainingAt: null,
      leases: { none: { status: { in: ['ACQUIRED', 'ACTIVE'] } } },
    },
    orderBy: { id: 'asc' },
  });
}

/** How many resources the blueprint has built (its resource-allocated logs). */
export function resourcesBuilt(h: Harness, blueprintId: number): Promise<number> {
  return h.db.prisma.log.count({ where: { type: 'resource-allocated', resource: { blueprintId } } });
}

/** The id of `resourceType`'s queue row (the type's first lease made it), which a pass is run for. */
export async function queueIdOf(h: Harness, resourceType: string): Promise<number> {
  const [queue] = await h.db.prisma.$queryRaw<{ id: number }[]>`
    SELECT id FROM "ResourceTypeQueue" WHERE "resourceType" = ${resourceType}`;
  if (!queue) throw new Error(`no queue row for ${resourceType}`);
  return queue.id;
}
