import { Gauge, Histogram, type Registry } from 'prom-client';
import type { Database } from '../../db/database.js';
import type { DomainEvent, EventSink } from '../../events/domain-events.js';

// Queries run at scrape time (prom-client's collect callbacks), so the numbers are the database's,
// shared by every process of the service, and cost nothing between scrapes. Each reads an index
// or a small table: Lease by status, Job by runAt.

const LEASES = `SELECT status::text AS status, "resourceType" AS type, count(*)::int AS n FROM "Lease" GROUP BY 1, 2`;
const WAITING = `SELECT "resourceType" AS type, count(*)::int AS n,
  EXTRACT(EPOCH FROM ($1::timestamp - min("createdAt")))::float8 AS oldest
  FROM "Lease" WHERE status = 'PENDING' GROUP BY 1`;
const JOBS = `SELECT count(*) FILTER (WHERE "lockedBy" IS NULL AND "runAt" <= $1::timestamp)::int AS due,
  count(*) FILTER (WHERE "lockedBy" IS NOT NULL AND "lockedUntil" >= $1::timestamp)::int AS running FROM "Job"`;
const GRANTS = `SELECT "resourceType" AS type, EXTRACT(EPOCH FROM ("activatedAt" - "createdAt"))::float8 AS seconds
  FROM "Lease" WHERE id = ANY($1::int[]) AND "activatedAt" IS NOT NULL`;

/** Timestamps are UTC wall time in `timestamp` columns, as Prisma writes them. */
const utcNow = () => new Date().toISOString();

/**
 * One read shared by the collect callbacks of one scrape: prom-client collects every metric at
 * once, so gauges that come from the same query start it in the same tick and share it.
 */
function sharedPerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= read().finally(() => {
      pending = undefined;
    }));
}

export interface DomainMetrics {
  /** Wraps the allocator's event sink: the leases this process activates feed the grant latency. */
  observe(sink: EventSink): EventSink;
}

export function registerDomainMetrics(registry: Registry, db: Database): DomainMetrics {
  const query = <T>(sql: string, ...params: unknown[]) => db.prisma.$queryRawUnsafe<T[]>(sql, ...params);
  const registers = [registry];
  const waiting = sharedPerScrape(() => query<{ type: string; n: number; oldest: number }>(WAITING, utcNow()));
  const jobs = sharedPerScrape(async () => (await query<{ due: number; running: number }>(JOBS, utcNow()))[0]);

  new Gauge({
    name: 'drydock_leases',
    help: 'Leases by status and resource type.',
    labelNames: ['status', 'resource_type'],
    registers,
    async collect() {
      const rows = await query<{ status: string; type: string; n: number }>(LEASES);
      this.reset();
      for (const row of rows) this.set({ status: row.status, resource_type: row.type }, row.n);
    },
  });

  new Gauge({
    name: 'drydock_leases_waiting',
    help: 'Leases waiting for a resource (PENDING), by resource type.',
    labelNames: ['resource_type'],
    registers,
    async collect() {
      const rows = await waiting();
      this.reset();
      for (const row of rows) this.set({ resource_type: row.type }, row.n);
    },
  });
  new Gauge({
    name: 'drydock_lease_oldest_wait_seconds',
    help: 'How long the oldest waiting (PENDING) lease of each resource type has waited.',
    labelNames: ['resource_type'],
    registers,
    async collect() {
      const rows = await waiting();
      this.reset();
      for (const row of rows) this.set({ resource_type: row.type }, Math.max(0, row.oldest));
    },
  });
  new Gauge({
    name: 'drydock_jobs_due',
    help: 'Queue jobs whose time has come and that no worker has claimed yet.',
    registers,
    async collect() {
      this.set((await jobs())?.due ?? 0);
    },
  });
  new Gauge({
    name: 'drydock_jobs_running',
    help: 'Queue jobs claimed by a worker whose claim has not expired.',
    registers,
    async collect() {
      this.set((await jobs())?.running ?? 0);
    },
  });
  // Only the process that activated a lease observes it, so a histogram summed over processes
  // counts each grant once. Ids wait in `activated` until the next scrape reads their times in one
  // query. A lease's later events say ACTIVE too (each log entry is an event): `counted` remembers
  // it until it leaves ACTIVE, capped so that leases released by other processes cannot pile up.
  const activated = new Set<number>();
  const counted = new Set<number>();
  const COUNTED_CAP = 100_000;
  new Histogram({
    name: 'drydock_lease_grant_seconds',
    help: 'From a lease being requested to it being ACTIVE, for the leases this process activated.',
    labelNames: ['resource_type'],
    // From the milliseconds a grant takes on a free pool to the half hour a lease may wait for one.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers,
    async collect() {
      if (activated.size === 0) return;
      const ids = [...activated];
      activated.clear();
      for (const id of ids) counted.add(id);
      for (const id of counted) {
        if (counted.size <= COUNTED_CAP) break;
        counted.delete(id);
      }
      for (const row of await query<{ type: string; seconds: number }>(GRANTS, ids)) {
        this.observe({ resource_type: row.type }, Math.max(0, row.seconds));
      }
    },
  });

  const note = (event: DomainEvent) => {
    if (event.kind !== 'lease') return;
    if (event.status !== 'ACTIVE') counted.delete(event.leaseId);
    else if (!counted.has(event.leaseId)) activated.add(event.leaseId);
  };
  return {
    observe: (sink) => ({
      publish(event) {
        note(event);
        sink.publish(event);
      },
      publishBatch(events) {
        events.forEach(note);
        if (sink.publishBatch) sink.publishBatch(events);
        else events.forEach((event) => sink.publish(event));
      },
    }),
  };
}
