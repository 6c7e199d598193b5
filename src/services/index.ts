import type { Database } from '../db/database.js';
import type { EventSink } from '../events/domain-events.js';
import type { AllocatorDeps, DeadlockObserver, PassObserver } from '../allocator/context.js';
import { updateLease } from '../allocator/lease-update.js';
import { allocatorOptions, type AllocatorOptions } from '../allocator/options.js';
import { KnownResourceRows } from '../allocator/known-resource-rows.js';
import { updateResource } from '../allocator/resource-update.js';
import { IdleQueues } from '../allocator/scheduler/idle-queues.js';
import { PassPacing } from '../allocator/scheduler/pacing.js';
import { runSchedulingPass } from '../allocator/scheduler/pass.js';
import { maintainBlueprint } from '../allocator/maintenance.js';
import { bookWarmPools, fillWarmPool } from '../allocator/warm-pool.js';
import { bareRuntime } from '../allocator/runtime.js';
import type { RuntimeTools } from '../allocator/runtime-tools.js';
import { createTransportFactory } from '../transports/factory.js';
import { createCommandRunner } from '../allocator/command-runner.js';
import type { BlueprintImplementation } from '../blueprints/implementation.js';
import { BlueprintRegistry, createRegistry } from '../blueprints/registry.js';
import { defaultWorkerOptions, QueueWorker, type WorkerOptions } from '../queue/worker.js';
import { authorizationService, type AuthorizationService } from './authorizations.js';
import { blueprintService, type BlueprintService } from './blueprints.js';
import { credentialService, type CredentialService } from './credentials.js';
import { leaseCommandService, type LeaseCommandService } from './lease-commands.js';
import { leaseService, type LeaseService } from './leases.js';
import { resourceService, type ResourceService } from './resources.js';
import { schedulingService, type SchedulingService } from './scheduling.js';
import { tokenService, type TokenService } from './tokens.js';

export type { Actor } from './actor.js';
export type { DeadlockObserver, PassObserver } from '../allocator/context.js';
export { ensurePrincipal, systemActor } from './actor.js';
export * from './errors.js';
export type { GangRequest, LeaseRequest } from './leases.js';
export type { BlueprintInput, BlueprintPatch } from './blueprints.js';

export interface ServicesDeps {
  db: Database;
  events: EventSink;
  /** Names this process's job claims (defaults to host:pid). */
  workerId?: string;
  /** Extra blueprint implementations next to the built-ins, or a whole registry of one's own. */
  implementations?: readonly BlueprintImplementation[] | BlueprintRegistry;
  allocator?: Partial<AllocatorOptions>;
  worker?: Partial<Omit<WorkerOptions, 'workerId'>>;
  /** Called after a commit that made work due at `runAt`, so that other processes can be told. */
  onWake?: (runAt: Date) => void;
  /** Called after a token's revocation has committed, so that every process ends its connections. */
  onTokenRevoked?: (tokenId: number) => void;
  /** Host transports: `local` runs commands on this machine, so it is off unless enabled. */
  transports?: { allowLocal?: boolean; stateDir?: string };
  /** Told of each scheduling pass this process runs (metrics). */
  passes?: PassObserver;
  /** Told of each transaction run again after PostgreSQL failed it as a deadlock's victim (logs, metrics). */
  deadlocks?: DeadlockObserver;
}

export interface WorkerHandle {
  stop(): Promise<void>;
  /** Something is due at `runAt`: the hook for cross-process wake-ups (Redis, LISTEN). */
  notify(runAt?: Date): void;
}

export interface Services {
  leases: LeaseService;
  resources: ResourceService;
  blueprints: BlueprintService;
  authorizations: AuthorizationService;
  credentials: CredentialService;
  tokens: TokenService;
  leaseCommands: LeaseCommandService;
  scheduling: SchedulingService;
  worker: {
    /** Runs the durable queue in this process until stopped. */
    start(options?: { concurrency?: number }): WorkerHandle;
    /** Runs one object's update now, in this process (the CLI's update-lease / update-resource). */
    runUpdate(kind: 'lease' | 'resource', id: number): Promise<void>;
  };
  registry: BlueprintRegistry;
  options: AllocatorOptions;
}

export function createServices(deps: ServicesDeps): Services {
  const registry =
    deps.implementations instanceof BlueprintRegistry
      ? deps.implementations
      : createRegistry(deps.implementations ?? []);
  const options = allocatorOptions(deps.allocator);
  let worker: QueueWorker | undefined;
  // Long hook work (a clone, a provisioner poll) watches this to stop at shutdown.
  const shutdown = new AbortController();
  const allowLocal = deps.transports?.allowLocal ?? false;
  const tools: RuntimeTools = {
    transports: createTransportFactory({
      db: deps.db,
      allowLocal,
      ...(deps.transports?.stateDir ? { stateDir: deps.transports.stateDir } : {}),
    }),
    commands: createCommandRunner({ db: deps.db, registry, runtime: () => bareRuntime(tools) }),
    signal: shutdown.signal,
  };
  const allocator: AllocatorDeps = {
    tools,
    db: deps.db,
    events: deps.events,
    registry,
    options,
    idleQueues: new IdleQueues(),
    passPacing: new PassPacing(options.passGapMs),
    queueTypes: new Map(),
    passDemands: new Map(),
    knownResourceRows: new KnownResourceRows(),
    ...(deps.passes ? { passes: deps.passes } : {}),
    ...(deps.deadlocks ? { deadlocks: deps.deadlocks } : {}),
    queue: {
      wake: (runAt) => {
        worker?.notify(runAt);
        deps.onWake?.(runAt);
      },
      reserve: () => worker?.reserve() ?? null,
    },
  };
  const workerId = deps.workerId ?? `${process.env['HOSTNAME'] ?? 'local'}:${process.pid}`;

  return {
    leases: leaseService(allocator),
    resources: resourceService(allocator),
    blueprints: blueprintService(allocator, { allowLocal }),
    authorizations: authorizationService(allocator),
    credentials: credentialService(deps.db),
    tokens: tokenService(deps.db, deps.onTokenRevoked),
    leaseCommands: leaseCommandService(allocator),
    scheduling: schedulingService(allocator),
    registry,
    options,
    worker: {
      start(startOptions = {}) {
        if (worker) throw new Error('the worker of these services is already running');
        // On PGlite too: its one connection runs one transaction at a time, but a job spends much
        // of its time outside the database (a provisioner's call, a clone), and one such job must
        // not hold up every other allocation.
        const concurrency = startOptions.concurrency ?? deps.worker?.concurrency ?? defaultWorkerOptions.concurrency;
        const running = new QueueWorker(
          deps.db,
          {
            LEASE_UPDATE: (job, claim) => updateLease(allocator, job.targetId, claim),
            RESOURCE_UPDATE: (job, claim) => updateResource(allocator, job.targetId, claim),
            BLUEPRINT_MAINTENANCE: (job) => maintainBlueprint(allocator, job.targetId),
            SCHEDULING_PASS: (job, claim) => runSchedulingPass(allocator, job.targetId, claim),
            WARM_POOL: (job, claim) => fillWarmPool(allocator, job.targetId, claim),
          },
          { ...defaultWorkerOptions, ...deps.worker, concurrency, workerId },
        );
        worker = running;
        running.start();
        // Resources may have changed while no process ran: every warm pool counts again.
        bookWarmPools(allocator).catch((error: unknown) => running.reportError(error));
        return {
          notify: (runAt) => running.notify(runAt),
          async stop() {
            shutdown.abort();
            await running.stop();
            if (worker === running) worker = undefined;
          },
        };
      },
      runUpdate: (kind, id) => (kind === 'lease' ? updateLease(allocator, id) : updateResource(allocator, id)),
    },
  };
}
