import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../../src/db/database.js';
import { createServices } from '../../src/services/index.js';
import { fastAllocator } from './allocator-harness.js';
import { createTestBlueprint, TestBlueprintControl } from './test-blueprint.js';

// A separate allocator process for the multi-process and crash tests: it works the queue of the
// PostgreSQL database named in its environment with the test blueprint registered, and nothing else.
//   WORKER_DATABASE_URL               where the queue is (the test's own database)
//   WORKER_ID                         names its claims (the tests look for a dead worker's claims)
//   WORKER_CLAIM_TTL_MS               how soon another worker takes over this one's jobs if it dies
//   WORKER_BLOCK                      hooks that block forever ("allocateResource,activateResource")
//   WORKER_TRACE                      file to append one line per job: key, pid, enter, exit
//   WORKER_AGING_MS                   the scheduler's aging interval (default: the allocator's)

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const control = new TestBlueprintControl();
for (const hook of (process.env['WORKER_BLOCK'] ?? '').split(',').filter(Boolean))
  control.blockIn.add(hook as 'allocateResource' | 'activateResource');
control.onBlocked = (hook, id) => console.log(`BLOCKED ${hook} ${id}`);

const db = await openDatabase({ url: env('WORKER_DATABASE_URL'), dataDir: '', poolSize: 8 });
const services = createServices({
  db,
  events: { publish: () => {} },
  workerId: env('WORKER_ID'),
  implementations: [createTestBlueprint(control)],
  allocator: {
    ...fastAllocator,
    ...(process.env['WORKER_AGING_MS'] ? { agingIntervalMs: Number(process.env['WORKER_AGING_MS']) } : {}),
  },
  worker: {
    claimTtlMs: Number(process.env['WORKER_CLAIM_TTL_MS'] ?? 5_000),
    // Jobs scheduled by another process are seen by this sweep (within a process they are pushed).
    sweepIntervalMs: 50,
    retryDelayMs: () => 50,
    ...(process.env['WORKER_TRACE']
      ? {
          wrap: async (claim, run) => {
            const enter = performance.timeOrigin + performance.now();
            try {
              await run();
            } finally {
              // A run whose own commit removed the job's row held it until it sent that commit
              // (JobClaim.completedAt): what the handler does after it (events) may overlap the
              // next run of the job in another process, by design (in this one, the next run waits
              // for it).
              const exit = performance.timeOrigin + (claim.completedAt ?? performance.now());
              appendFileSync(
                env('WORKER_TRACE'),
                `${JSON.stringify({ key: claim.job.key, pid: process.pid, enter, exit })}\n`,
              );
            }
          },
        }
      : {}),
    onError: (_job, error) => console.error(`[worker ${process.pid}]`, error),
  },
});
const handle = services.worker.start({ concurrency: Number(process.env['WORKER_CONCURRENCY'] ?? 4) });
console.log('READY');

const shutdown = async () => {
  await handle.stop();
  await db.close();
  process.exit(0);
};
process.once('SIGTERM', () => void shutdown());
