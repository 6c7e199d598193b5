import type { DatabaseKind } from '../../src/db/database.js';
import { createHarness } from '../support/allocator-harness.js';
import { drive, type Operation } from './driver.js';
import { createFleet, kindOf, MODEL_AGING_MS } from './fleet.js';
import { checkLeases } from './lease-model.js';
import { LogChecker } from './log-checker.js';
import { Prng } from '../support/prng.js';
import { bindingsOf, finalStatuses, replayLogs } from './replay.js';
import { settle } from './settle.js';
import { schedulingViolations } from './scheduling-checker.js';
import { readEvidence } from './evidence.js';
import { settledViolations } from './snapshot.js';
import { WorkerPool } from './workers.js';

// One model run: set up the fleet, start the allocators, drive the operations, let everything
// settle, then replay the log against the invariants and the model.

export interface ModelRunOptions {
  kind: DatabaseKind;
  ops: number;
  seed: number;
  /** Child worker processes, killed and replaced now and then; 0 runs the allocator in this process. */
  workers: number;
  claimTtlMs?: number;
  /** For the whole run; the operation stream gets most of it, settling the rest. */
  budgetMs: number;
}

export interface ModelReport {
  seed: number;
  ops: number;
  opsMs: number;
  settleMs: number;
  checkMs: number;
  counts: Record<Operation, number>;
  refused: number;
  kills: number;
  leases: number;
  resources: number;
  logs: number;
  activated: number;
  releaseReasons: Record<string, number>;
  resourceReleases: Record<string, number>;
  peaks: Record<string, number>;
  problems: string[];
  /** The rows and logs the problems name (evidence.ts); empty when there are none. */
  evidence: string;
  trace: string[];
}

export async function runModel(options: ModelRunOptions): Promise<ModelReport> {
  const started = Date.now();
  // A caller's transaction failed as a deadlock's victim is run again (allocator/deadlocks.ts), which
  // would hide a lock-order fault from the model: each one is a problem of the run.
  const deadlocks: string[] = [];
  const h = await createHarness(options.kind, {
    poolSize: 12,
    allocator: { agingIntervalMs: MODEL_AGING_MS },
    deadlocks: {
      retried: ({ what, attempt }) => deadlocks.push(`${what} failed as a deadlock's victim (run ${attempt})`),
    },
  });
  let pool: WorkerPool | undefined;
  let stopLocal: (() => Promise<void>) | undefined;
  try {
    const fleet = await createFleet(h.services, h.system, h.db);
    if (options.workers > 0) {
      pool = new WorkerPool(h.db.url!, options.workers, options.claimTtlMs ?? 1_500);
      await pool.start();
    } else {
      const handle = h.services.worker.start();
      stopLocal = () => handle.stop();
    }
    const driven = await drive({
      ops: options.ops,
      deadline: started + options.budgetMs * 0.75,
      rng: new Prng(options.seed),
      db: h.db,
      services: h.services,
      system: h.system,
      fleet,
      ...(pool ? { workers: pool } : {}),
    });
    const opsMs = Date.now() - started;
    const phase = (name: string) =>
      options.ops >= 10_000 && console.log(`model: ${name} at ${Math.round((Date.now() - started) / 1_000)} s`);
    phase(`${driven.done} operations done`);
    await pool?.settled();
    phase('workers settled');
    const dead = pool?.dead ?? [];
    const settled = await settle(h.db, h.services, h.system, driven.model, started + options.budgetMs, dead);
    phase(settled.settled ? 'settled' : 'not settled');
    const checkStarted = Date.now();
    const problems = [...driven.violations, ...(pool?.errors ?? []), ...deadlocks];
    if (driven.done < options.ops) problems.push(`only ${driven.done} of ${options.ops} operations within the budget`);
    if (!settled.settled) problems.push(`not settled within the budget: ${settled.left.join('; ')}`);
    problems.push(...(await settledViolations(h.db, dead)));

    const bindings = await bindingsOf(h.db, fleet.ids.pool);
    const checker = new LogChecker(fleet.rules, (id) => bindings.get(id));
    await replayLogs(h.db, checker);
    phase('log replayed');
    problems.push(...checker.finish(await finalStatuses(h.db), settled.settled));
    problems.push(...checkLeases(driven.model, checker, fleet));
    const quotas = new Map(fleet.owners.map((o) => [o.actor.principalId, o.quota]));
    problems.push(
      ...(await schedulingViolations(h.db, {
        agingIntervalMs: MODEL_AGING_MS,
        quota: (ownerId, type) => (type === 'test-slot' && ownerId !== null ? (quotas.get(ownerId) ?? null) : null),
        fits: (lease, blueprintId) =>
          fleet.allowed[kindOf(lease)].includes(blueprintId) &&
          (lease.allowedBlueprintIds.length === 0 || lease.allowedBlueprintIds.includes(blueprintId)),
      })),
    );
    phase('checked');
    const evidence = problems.length > 0 ? await readEvidence(h.db, problems) : '';
    if (evidence) console.log(evidence);
    if (problems.length > 0 && pool) problems.push(...pool.complaints());

    const tally = (values: Iterable<string | null>) => {
      const out: Record<string, number> = {};
      for (const value of values) if (value !== null) out[value] = (out[value] ?? 0) + 1;
      return out;
    };
    const names = Object.fromEntries(Object.entries(fleet.ids).map(([name, id]) => [id, name]));
    return {
      seed: options.seed,
      ops: driven.done,
      opsMs,
      settleMs: settled.ms,
      checkMs: Date.now() - checkStarted,
      counts: driven.counts,
      refused: driven.refused,
      kills: dead.length,
      leases: checker.leases.size,
      resources: checker.resources.size,
      logs: checker.logs,
      activated: [...checker.leases.values()].filter((l) => l.path.includes('ACTIVE')).length,
      releaseReasons: tally([...checker.leases.values()].map((l) => l.releaseReason)),
      resourceReleases: tally([...checker.resources.values()].map((r) => r.releaseReason)),
      peaks: Object.fromEntries([...checker.peak].map(([id, n]) => [names[id] ?? String(id), n])),
      problems,
      evidence,
      trace: driven.trace,
    };
  } finally {
    await stopLocal?.();
    await pool?.stop();
    await h.dispose();
  }
}
