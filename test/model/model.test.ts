import { describe, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { seedFromEnv } from '../support/prng.js';
import { runModel, type ModelReport } from './run.js';

// Issue 6: random requests, releases, expiries, reclaims and (on PostgreSQL) SIGKILLed allocator
// processes against a model of the spec, with the invariants checked while it runs and from the
// log afterwards. MODEL_OPS sets the PostgreSQL run's length (the long mode is 100,000:
// `npm run test:model:long`); MODEL_SEED replays a run's choice of operations (what the allocator
// makes of them still depends on timing, so the printed trace is the record of a failure). The
// run prints its progress and rate every 5,000 operations, and its tallies at the end.

const seed = seedFromEnv('MODEL_SEED');
const pgOps = Number(process.env['MODEL_OPS'] ?? 2_000);
const pgliteOps = Number(process.env['MODEL_PGLITE_OPS'] ?? 250);
// Generous per-operation allowance: a shared two-core machine is slow, and a budget overrun fails.
const budget = (ops: number) => 90_000 + ops * 100;

function report(label: string, r: ModelReport): void {
  const { problems, evidence: _evidence, trace, ...numbers } = r;
  console.log(`model [${label}] seed=${r.seed} (MODEL_SEED=${r.seed} replays it)\n${JSON.stringify(numbers, null, 1)}`);
  if (problems.length > 0)
    console.log(
      `model [${label}] first operations:\n${trace.slice(0, 400).join('\n')}\nproblems:\n${problems.join('\n')}`,
    );
}

function expectExercised(r: ModelReport, long: boolean): void {
  // A run that never served, expired or reclaimed anything proves nothing.
  expect(r.activated, 'leases that became ACTIVE').toBeGreaterThan(r.ops / 20);
  expect(r.releaseReasons['expired'] ?? 0, 'leases that expired').toBeGreaterThan(0);
  expect(r.releaseReasons['command'] ?? 0, 'leases released on request').toBeGreaterThan(0);
  expect(Object.keys(r.resourceReleases).length, 'resources released').toBeGreaterThan(0);
  // A resource is rarely idle when asked (about one reclaim in ten finds one): only a long run is sure to.
  if (long) expect(r.resourceReleases['reclaimed'] ?? 0, 'resources reclaimed').toBeGreaterThan(0);
}

describe('randomized model [pglite]', () => {
  it(
    `${pgliteOps} random operations keep every invariant (seed ${seed})`,
    async () => {
      const r = await runModel({ kind: 'pglite', ops: pgliteOps, seed, workers: 0, budgetMs: budget(pgliteOps) });
      report('pglite', r);
      expect(r.problems, r.evidence).toEqual([]);
      expectExercised(r, false);
    },
    budget(pgliteOps) + 60_000,
  );
});

describePostgres('randomized model with killed allocator processes', () => {
  it(
    `${pgOps} random operations keep every invariant (seed ${seed})`,
    async () => {
      const r = await runModel({ kind: 'postgresql', ops: pgOps, seed, workers: 3, budgetMs: budget(pgOps) });
      report('postgresql', r);
      expect(r.problems, r.evidence).toEqual([]);
      expectExercised(r, pgOps >= 1_000);
      expect(r.kills, 'workers killed with SIGKILL').toBeGreaterThan(0);
    },
    budget(pgOps) + 60_000,
  );
});
