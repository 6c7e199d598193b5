import type { Database } from '../../src/db/database.js';
import type { Actor, Services } from '../../src/services/index.js';
import { leaseRequest, type Fleet, type LeaseKind } from './fleet.js';
import type { ModelLease } from './lease-model.js';
import type { Prng } from '../support/prng.js';
import { snapshotViolations } from './snapshot.js';
import type { WorkerPool } from './workers.js';

// The random operation stream. Every operation goes through the services the way a client's would;
// the model records what it asked for, so that the checks afterwards know what was allowed.

export type Operation =
  'request' | 'request-until' | 'gang' | 'release-lease' | 'release-resource' | 'reclaim' | 'kill-worker' | 'pause';

export interface DriverOptions {
  ops: number;
  deadline: number;
  rng: Prng;
  db: Database;
  services: Services;
  system: Actor;
  fleet: Fleet;
  /** Child workers to kill now and then (PostgreSQL); none means the allocator runs in this process. */
  workers?: WorkerPool;
  /** Above this many live leases of ours, the next operation releases one. */
  maxLive?: number;
  snapshotEvery?: number;
  /** Operations between progress lines. */
  progressEvery?: number;
}

export interface DriverResult {
  done: number;
  counts: Record<Operation, number>;
  /** Operations the services refused (a release of a lease that had already gone, ...). */
  refused: number;
  model: Map<number, ModelLease>;
  violations: string[];
  /** The first operations, for replaying a failure by hand. */
  trace: string[];
}

const weights = (kills: boolean): Record<Operation, number> => ({
  request: 30,
  'request-until': 10,
  gang: 3,
  'release-lease': 30,
  'release-resource': 2,
  reclaim: 3,
  'kill-worker': kills ? 0.3 : 0,
  pause: 3,
});
const kindWeights: Record<LeaseKind, number> = { exclusive: 5, later: 2, host: 3, never: 1 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function drive(options: DriverOptions): Promise<DriverResult> {
  const { rng, services, system, fleet, db } = options;
  const maxLive = options.maxLive ?? 40;
  const snapshotEvery = options.snapshotEvery ?? 100;
  const counts = Object.fromEntries(Object.keys(weights(false)).map((k) => [k, 0])) as Record<Operation, number>;
  const model = new Map<number, ModelLease>();
  const live: number[] = [];
  const violations: string[] = [];
  const trace: string[] = [];
  let refused = 0;
  const note = (line: string) => trace.length < 5_000 && trace.push(line);

  // Leases are asked for by the system or one of the fleet's owners, at a random priority.
  const someone = () => (rng.chance(0.25) ? system : rng.pick(fleet.owners).actor);
  const priority = () => (rng.chance(0.6) ? 0 : rng.int(-3, 3));

  const request = async (withUntil: boolean) => {
    const kind = rng.weighted(kindWeights);
    const until = withUntil ? new Date(Date.now() + rng.int(20, 400)) : null;
    const [actor, level] = [someone(), priority()];
    // Some unlabelled slots are asked of one blueprint only: leases of one set of attributes then
    // wait for different capacity, which the pass's read of its queue must tell apart.
    const blueprintIds = kind === 'exclusive' && rng.chance(0.25) ? [rng.pick([fleet.ids.fast, fleet.ids.later])] : [];
    const result = await services.leases.request(actor, {
      ...leaseRequest(kind, until ?? undefined),
      priority: level,
      blueprintIds,
    });
    if (!result.ok) {
      // On a busy machine the request can reach validation after its short `until` has passed:
      // the service is right to refuse it.
      if (until && until.getTime() <= Date.now() && result.error.message.includes('until')) {
        refused++;
        note(`request ${kind} refused: its until passed before the service saw it`);
        return;
      }
      throw new Error(`request ${kind} refused: ${result.error.message}`);
    }
    model.set(result.value.id, { id: result.value.id, kind, until, releasedByUs: false, gang: null, blueprintIds });
    live.push(result.value.id);
    note(
      `request ${kind}${blueprintIds.length ? ` of blueprint ${blueprintIds[0]}` : ''} by ${actor.name} at ${level}${until ? ` until+${until.getTime() - Date.now()}ms` : ''} → lease ${result.value.id}`,
    );
  };

  // A gang of exclusive test slots: granted whole or not at all, released together.
  const gang = async () => {
    const actor = someone();
    const count = rng.int(2, 3);
    const result = await services.leases.requestGang(actor, {
      parts: [{ resourceType: 'test-slot', count }],
      priority: priority(),
    });
    // More parts than the owner's quota could never be granted: refused at once.
    const quota = fleet.owners.find((owner) => owner.actor.principalId === actor.principalId)?.quota ?? null;
    if (quota !== null && count > quota) {
      if (result.ok || result.error.kind !== 'ValidationError')
        throw new Error(`gang of ${count} on a quota of ${quota} not refused`);
      note(`gang of ${count} by ${actor.name} refused: over its quota of ${quota}`);
      return;
    }
    if (!result.ok) throw new Error(`gang refused: ${result.error.message}`);
    const parts = result.value.map((l) => l.id);
    for (const id of parts) model.set(id, { id, kind: 'exclusive', until: null, releasedByUs: false, gang: parts });
    // Once, not once per part: a gang picked for release as often as a single lease waits long
    // enough to age now and then, which is what exercises its reservation.
    live.push(parts[0]!);
    note(`gang of ${count} by ${actor.name} → leases ${parts.join(',')}`);
  };

  const releaseLease = async () => {
    const id = live.splice(rng.int(0, live.length - 1), 1)[0]!;
    // A gang's parts are released together, by a release of any part that is still live.
    const parts = model.get(id)!.gang ?? [id];
    let released: number | null = null;
    for (const part of parts) {
      const result = await services.leases.release(system, part);
      if (result.ok) released = part;
      else if (result.error.kind !== 'IllegalTransitionError')
        throw new Error(`release of lease ${part}: ${result.error.kind}: ${result.error.message}`);
      if (result.ok) break;
    }
    if (released === null) refused++;
    else for (const part of parts) model.get(part)!.releasedByUs = true;
    note(`release lease ${released ?? id}${released === null ? ' (already gone)' : ''}`);
  };

  const releaseResource = async () => {
    const open = await db.prisma.resource.findMany({
      where: { status: { in: ['PENDING', 'ACTIVE'] } },
      select: { id: true },
    });
    if (open.length === 0) return;
    const id = rng.pick(open).id;
    const result = await services.resources.release(system, id);
    if (!result.ok && result.error.kind !== 'IllegalTransitionError')
      throw new Error(`release of resource ${id}: ${result.error.kind}: ${result.error.message}`);
    if (!result.ok) refused++;
    note(`release resource ${id}${result.ok ? '' : ' (already gone)'}`);
  };

  const started = Date.now();
  const progressEvery = options.progressEvery ?? 5_000;
  let done = 0;
  for (; done < options.ops && Date.now() < options.deadline; done++) {
    let op = rng.weighted(weights(options.workers !== undefined));
    if (live.length >= maxLive && (op.startsWith('request') || op === 'gang')) op = 'release-lease';
    if (op === 'release-lease' && live.length === 0) op = 'request';
    counts[op]++;
    switch (op) {
      case 'request':
      case 'request-until':
        await request(op === 'request-until');
        break;
      case 'gang':
        await gang();
        break;
      case 'release-lease':
        await releaseLease();
        break;
      case 'release-resource':
        await releaseResource();
        break;
      case 'reclaim': {
        const resourceType = rng.pick([undefined, 'test-slot', 'host']);
        const result = await services.resources.reclaim(system, resourceType ? { resourceType } : {});
        if (!result.ok) throw new Error(`reclaim: ${result.error.message}`);
        note(`reclaim ${resourceType ?? 'all'} → ${result.value.map((r) => r.id).join(',') || 'none'}`);
        break;
      }
      case 'kill-worker':
        note(`kill a worker: ${(await options.workers!.killOne(rng)) ? 'killed' : 'skipped, one still starting'}`);
        break;
      case 'pause': {
        const ms = rng.int(5, 60);
        note(`pause ${ms}ms`);
        await sleep(ms);
        break;
      }
    }
    if ((done + 1) % snapshotEvery === 0) violations.push(...(await snapshotViolations(db, fleet)));
    // A long run takes a while on a busy machine: say how far it got, and how fast.
    if ((done + 1) % progressEvery === 0) {
      const seconds = (Date.now() - started) / 1_000;
      console.log(
        `model: ${done + 1} operations in ${seconds.toFixed(0)} s (${((done + 1) / seconds).toFixed(0)}/s), ${model.size} leases, ${options.workers?.dead.length ?? 0} workers killed`,
      );
    }
  }
  return { done, counts, refused, model, violations, trace };
}
