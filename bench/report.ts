import type { passesBetween } from './client.js';
import type { CycleResult } from './rows/cycles.js';
import type { FanoutResult } from './rows/fanout.js';
import { WARM_SECONDS, type GrantResult } from './rows/grant-latency.js';
import type { HandoffResult } from './rows/handoff.js';
import type { OverloadResult } from './rows/overload.js';
import type { WaitProfile } from './postgres-waits.js';
import type { MixedOrderResult } from './rows/mixed-order.js';
import type { PoolGrants, PoolScalingResult } from './rows/pool-scaling.js';
import type { RawFloorResult } from './rows/raw-floor.js';
import type { SpreadResult } from './rows/spread.js';
import { fmtMs } from './stats.js';
import type { Row } from './table.js';

// The issue's targets; they are for the table only, never for a test.
const targets = {
  grantP50: 5,
  grantP99: 25,
  cycleShareOfFloor: 0.15,
  handoffP99: 50,
  fanoutP99: 250,
  idleKiBPerSubscriber: 20,
  admittedP99Factor: 2,
  refusedP99: 50,
  poolFlatness: 1.5,
};

const within = (value: number, limit: number) => (Number.isFinite(value) ? value <= limit : false);

export function floorRow(floor: RawFloorResult): Row {
  return {
    row: 'raw floor: slot-lock insert+delete transaction (plain pg)',
    result: `${floor.perSecond.toFixed(0)} tx/s (${floor.transactions} in ${floor.seconds.toFixed(1)} s)`,
    target: 'reference',
    met: undefined,
  };
}

/** What a row's work cost, per unit (from /proc): the server's CPU, PostgreSQL's, and how busy the machine was. */
export interface RunCost {
  serverCpuMs?: number;
  /** PostgreSQL's backends for this database. */
  postgresCpuMs?: number;
  /** The whole machine's CPU busy over the run (0–1, all cores): the bench's own clients included. */
  machineBusy?: number;
}

function costText(cost: RunCost, unit: string): string {
  return (
    (cost.serverCpuMs === undefined ? '' : `, server CPU ${cost.serverCpuMs.toFixed(1)} ms/${unit}`) +
    (cost.postgresCpuMs === undefined ? '' : `, PostgreSQL CPU ${cost.postgresCpuMs.toFixed(1)} ms/${unit}`) +
    (cost.machineBusy === undefined ? '' : `, machine ${(cost.machineBusy * 100).toFixed(0)} % busy`)
  );
}

/** The server's own account of its scheduling passes over a grant row: where a grant's time goes. */
function passesText(passes?: ReturnType<typeof passesBetween>): string {
  return passes?.passes
    ? `; ${passes.passes} passes of ${passes.meanMs.toFixed(1)} ms on average (transaction start to commit), ${passes.grantsEach.toFixed(1)} grants each`
    : '';
}

export function grantRows(
  g: GrantResult,
  cost: RunCost = {},
  passes?: ReturnType<typeof passesBetween>,
  /** The cost from the first warm request on, per grant seen in that time: reported, not judged. */
  warmCost?: RunCost,
): Row[] {
  const counts = `${g.granted}/${g.sent} granted${g.failed ? `, ${g.failed} failed` : ''}, ${g.rate}/s${costText(cost, 'grant')}${passesText(passes)}`;
  return [
    {
      row: 'grant latency p50 (requestLease → ACTIVE on subscription, free pool)',
      result: `${fmtMs(g.p50)} (${counts})`,
      target: `≤ ${targets.grantP50} ms`,
      met: g.failed === 0 && within(g.p50, targets.grantP50),
    },
    {
      row: 'grant latency p99',
      result: fmtMs(g.p99),
      target: `≤ ${targets.grantP99} ms`,
      met: g.failed === 0 && within(g.p99, targets.grantP99),
    },
    ...(g.steady
      ? [
          {
            row: `grant latency p50 / p99 of the requests sent after the first ${WARM_SECONDS} s (the same run, server warm)`,
            result: `${fmtMs(g.steady.p50)} / ${fmtMs(g.steady.p99)} (${g.steady.count} grants${warmCost ? `; from then on${costText(warmCost, 'grant')}` : ''})`,
            target: `≤ ${targets.grantP50} / ${targets.grantP99} ms`,
            met: g.failed === 0 && within(g.steady.p50, targets.grantP50) && within(g.steady.p99, targets.grantP99),
          },
        ]
      : []),
  ];
}

export function backlogRows(
  g: GrantResult & { waiting: number },
  free: GrantResult,
  /** The backlog row's pool with nothing waiting, timed just before it. */
  none: GrantResult,
  cost: RunCost = {},
  passes?: ReturnType<typeof passesBetween>,
): Row[] {
  const ratio = (to: GrantResult) => (g.p50 / Math.max(to.p50, 0.001)).toFixed(2);
  return [
    {
      row: `grant latency p50 with ${g.waiting} leases already waiting in the type's queue`,
      result: `${fmtMs(g.p50)}, p99 ${fmtMs(g.p99)} (${g.granted}/${g.sent} granted${g.failed ? `, ${g.failed} failed` : ''}, ${g.rate}/s${costText(cost, 'grant')}${passesText(passes)}; ${ratio(none)}× the p50 of the same pool with none waiting, ${fmtMs(none.p50)} (p99 ${fmtMs(none.p99)}); ${ratio(free)}× the free pool's)`,
      target: `≤ ${targets.grantP50} ms`,
      met: g.failed === 0 && none.failed === 0 && within(g.p50, targets.grantP50),
    },
  ];
}

export function mixedOrderRows(m: MixedOrderResult): Row[] {
  return [
    {
      row: `mixed priorities, ${m.owners} owners, ${m.leases} leases queued: order served (owner:priority)`,
      result: `queue head ${m.queueHead.join(' ')}; served ${m.served.join(' ')} …; priorities never rise: ${m.priorityOrdered ? 'yes' : 'no'}`,
      target: 'priority, then fair share',
      met: m.priorityOrdered,
    },
  ];
}

type MeasuredCycles = CycleResult & RunCost;

/** Without `two` and `floor` (PGlite): the one-process row alone, reported as cycles per second. */
export function cycleRows(one: MeasuredCycles, two: MeasuredCycles | null, floor: RawFloorResult | null): Row[] {
  const row = (c: MeasuredCycles): Row => {
    const share = floor ? c.perSecond / floor.perSecond : Number.NaN;
    const cpu = costText(c, 'cycle');
    return {
      row: `full lease cycles/s, ${c.servers} server process${c.servers > 1 ? 'es' : ''} (request → ACTIVE → release → DESTROYED)`,
      result: `${c.perSecond.toFixed(1)}/s${floor ? ` = ${(share * 100).toFixed(1)} % of floor` : ''} (${c.cycles} cycles, ${c.clients} clients, ${c.seconds.toFixed(1)} s${cpu}${c.failed ? `, ${c.failed} failed` : ''})`,
      target: floor ? `≥ ${targets.cycleShareOfFloor * 100} % of floor` : 'reference',
      met: floor ? c.failed === 0 && share >= targets.cycleShareOfFloor : undefined,
    };
  };
  if (!two) return [row(one)];
  return [
    row(one),
    row(two),
    {
      row: 'two processes ÷ one process',
      result: `${(two.perSecond / one.perSecond).toFixed(2)}×`,
      target: 'reference',
      met: undefined,
    },
  ];
}

/** What the bench database's backends were doing during each cycle row (PostgreSQL only). */
export function waitRows(rows: readonly (CycleResult & { waits: WaitProfile | null })[]): Row[] {
  return rows.flatMap((c) =>
    c.waits
      ? [
          {
            row: `PostgreSQL backends during the ${c.servers}-process cycle row (average number in each state, read 10 ms apart)`,
            result: `${
              c.waits.states
                .filter((s) => s.backends >= 0.005)
                .map((s) => `${s.state} ${s.backends.toFixed(2)}`)
                .join('; ') || 'none active'
            } (${c.waits.samples} readings)`,
            target: 'reference',
            met: undefined,
          },
        ]
      : [],
  );
}

export function handoffRows(h: HandoffResult): Row[] {
  return [
    {
      row: 'hand-off p50 (release → next lease ACTIVE; proxy, see notes)',
      result: `${fmtMs(h.p50)} (${h.handoffs} hand-offs)`,
      target: 'reference',
      met: undefined,
    },
    {
      row: 'hand-off p99',
      result: fmtMs(h.p99),
      target: `≤ ${targets.handoffP99} ms`,
      met: within(h.p99, targets.handoffP99),
    },
  ];
}

export function fanoutRows(f: FanoutResult): Row[] {
  const complete = f.delivered === f.subscribers;
  return [
    {
      row: `fan-out p50 (${f.subscribers} graphql-ws subscribers, one release)`,
      result: `${fmtMs(f.p50)} (${f.delivered}/${f.connected} delivered of ${f.subscribers}; connect ${f.connectSeconds.toFixed(1)} s; release mutation ${fmtMs(f.releaseMs)})`,
      target: 'reference',
      met: undefined,
    },
    {
      row: 'fan-out p99',
      result: `${fmtMs(f.p99)} (max ${fmtMs(f.max)})`,
      target: `≤ ${targets.fanoutP99} ms`,
      met: complete && within(f.p99, targets.fanoutP99),
    },
    {
      // Read without a collection (one would open the inspector, and this row's fan-out is timed
      // as `npm start` runs): garbage made or collected meanwhile moves it, even below zero. The
      // idle rows read memory after full collections.
      row: 'memory per idle subscriber (server RSS delta ÷ N, no collection; the idle rows measure it)',
      result: `${f.rssAfterBytes < f.rssBeforeBytes ? 'not measurable in this run: the server gave memory back while they connected; ' : ''}${(f.bytesPerSubscriber / 1024).toFixed(1)} KiB (RSS ${(f.rssBeforeBytes / 2 ** 20).toFixed(0)} → ${(f.rssAfterBytes / 2 ** 20).toFixed(0)} MiB)`,
      target: 'reference',
      met: undefined,
    },
  ];
}

/**
 * The same fan-out with many more subscribers: what each idle one costs the server. `fileLimit`:
 * the per-process open-file limit, which bounds how many one process can hold.
 */
export function idleRows(f: FanoutResult, fileLimit: string): Row[] {
  const kib = f.marginalBytesPerSubscriber / 1024;
  return [
    {
      row: `memory per idle subscriber, ${f.subscribers} connected to one process (open-file limit ${fileLimit}; server RSS growth over the second half ÷ its subscribers, each reading after a full collection)`,
      result: `${kib.toFixed(1)} KiB (over all ${f.connected}: ${(f.bytesPerSubscriber / 1024).toFixed(1)} KiB; RSS ${(f.rssBeforeBytes / 2 ** 20).toFixed(0)} → ${(f.rssAfterBytes / 2 ** 20).toFixed(0)} MiB; connected in ${f.connectSeconds.toFixed(1)} s)`,
      target: `≤ ${targets.idleKiBPerSubscriber} KiB`,
      met: f.connected === f.subscribers && within(kib, targets.idleKiBPerSubscriber),
    },
    {
      row: `fan-out to ${f.subscribers} subscribers (p50 / p99)`,
      result: `${fmtMs(f.p50)} / ${fmtMs(f.p99)} (${f.delivered}/${f.connected} delivered; max ${fmtMs(f.max)})`,
      target: 'reference',
      met: undefined,
    },
  ];
}

/** Subscribers over two server processes: each process's memory per idle one, and the fan-out to all. */
export function spreadRows(s: SpreadResult): Row[] {
  const n = s.servers.length;
  const perServer = (f: (server: SpreadResult['servers'][number]) => string) =>
    s.servers.map((server, i) => `server ${i + 1}: ${f(server)}`).join('; ');
  const kib = (bytes: number) => (bytes / 1024).toFixed(1);
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  return [
    {
      row: `memory per idle subscriber, ${s.subscribers} connected over ${n} server processes sharing one PostgreSQL (each one's RSS growth over its second half ÷ its subscribers, each reading after a full collection)`,
      result: `${perServer((p) => `${kib(p.marginalBytesPerSubscriber)} KiB (heap ${kib(p.marginalHeapBytesPerSubscriber)} KiB; ${p.connected}/${p.subscribers} connected${p.failed ? `, ${p.failed} failed` : ''}; RSS ${mib(p.rssBeforeBytes)} → ${mib(p.rssAfterBytes)} MiB)`)}; connected in ${s.connectSeconds.toFixed(1)} s`,
      target: `≤ ${targets.idleKiBPerSubscriber} KiB`,
      met:
        s.connected === s.subscribers &&
        s.servers.every((p) => within(p.marginalBytesPerSubscriber / 1024, targets.idleKiBPerSubscriber)),
    },
    {
      row: `fan-out of one release to those ${s.subscribers} (p50 / p99; sent to server 1, on to server 2 by NOTIFY)`,
      result: `${fmtMs(s.p50)} / ${fmtMs(s.p99)} (${s.received}/${s.connected} received; max ${fmtMs(s.max)}; p99 ${perServer((p) => `${fmtMs(p.p99)} (${p.received})`)}; release mutation ${fmtMs(s.releaseMs)})`,
      target: 'reference',
      met: undefined,
    },
  ];
}

export function overloadRows(o: OverloadResult): Row[] {
  const refusedBy = Object.entries(o.refusedBy)
    .map(([status, n]) => `${n}× ${status}`)
    .join(', ');
  return [
    {
      row: `overload: ${o.offeredPerSecond.toFixed(0)} req/s offered for ${o.seconds} s (3× the measured ${o.capacity.toFixed(0)} req/s), admitted p99`,
      result: `${fmtMs(o.admittedP99)} against ${fmtMs(o.unloadedP99)} unloaded (${o.admitted} admitted of ${o.sent})`,
      target: `≤ ${targets.admittedP99Factor}× unloaded`,
      met: o.admitted > 0 && within(o.admittedP99, o.unloadedP99 * targets.admittedP99Factor),
    },
    {
      row: 'overload: refused answered within (p99)',
      result: `${fmtMs(o.refusedP99)} (${o.refused} refused${refusedBy ? `: ${refusedBy}` : ''})`,
      target: `≤ ${targets.refusedP99} ms`,
      met: o.refused > 0 && within(o.refusedP99, targets.refusedP99),
    },
    {
      row: 'overload: admitted requests lost (answered without their data)',
      result: `${o.lost}${o.unanswered ? ` (and ${o.unanswered} without any answer in 30 s or with a failed connection)` : ''}`,
      target: '0',
      met: o.lost === 0 && o.unanswered === 0,
    },
  ];
}

export function poolRows(pools: PoolScalingResult[]): Row[] {
  const states: { label: string; of: (p: PoolScalingResult) => PoolGrants | undefined }[] = [
    { label: 'as filled', of: (p) => p },
    { label: 'after VACUUM ANALYZE', of: (p) => p.maintained },
  ];
  const cpu = (g: PoolGrants) =>
    g.cpuMsPerGrant === undefined ? '' : `; server + PostgreSQL CPU ${g.cpuMsPerGrant.toFixed(1)} ms/grant`;
  const rows: Row[] = [];
  for (const p of pools) {
    rows.push({
      row: `grant latency, ${p.hosts}-host pool, as filled (p50 / p99)`,
      result: `${fmtMs(p.p50)} / ${fmtMs(p.p99)} (${p.resources} resources filled in ${p.fillSeconds.toFixed(1)} s; ${p.granted}/${p.sent} granted at ${p.rate}/s${cpu(p)})`,
      target: 'reference',
      met: undefined,
    });
    const m = p.maintained;
    if (m)
      rows.push({
        row: `grant latency, ${p.hosts}-host pool, after VACUUM ANALYZE (p50 / p99)`,
        result: `${fmtMs(m.p50)} / ${fmtMs(m.p99)} (once every pool was filled and timed: VACUUM ANALYZE ${m.maintenanceSeconds.toFixed(1)} s; ${m.granted}/${m.sent} granted${cpu(m)})`,
        target: 'reference',
        met: undefined,
      });
  }
  const smallest = pools[0];
  const largest = pools.at(-1);
  if (!smallest || !largest || smallest === largest) return rows;
  const filled = largest.resources < largest.hosts ? ` (pool only filled to ${largest.resources})` : '';
  for (const { label, of } of states) {
    const small = of(smallest);
    const large = of(largest);
    if (!small || !large) continue;
    // A ratio of measures that cannot be negative: one that is says the measuring failed.
    const judged = (ratio: number) =>
      large.failed === 0 && largest.resources === largest.hosts && ratio > 0 && ratio <= targets.poolFlatness;
    if (large.cpuMsPerGrant !== undefined && small.cpuMsPerGrant !== undefined) {
      const ratio = large.cpuMsPerGrant / small.cpuMsPerGrant;
      rows.push({
        row: `per-grant cost ${largest.hosts} ÷ ${smallest.hosts} hosts, ${label} (CPU per grant, server + PostgreSQL)`,
        result: `${ratio.toFixed(2)}×${filled}`,
        target: `≤ ${targets.poolFlatness}×`,
        met: judged(ratio),
      });
    }
    const latency = large.p50 / small.p50;
    rows.push({
      row: `grant latency ${largest.hosts} ÷ ${smallest.hosts} hosts, ${label} (p50 ratio)`,
      result: `${latency.toFixed(2)}×${filled}`,
      target: `≤ ${targets.poolFlatness}×`,
      met: judged(latency),
    });
  }
  return rows;
}
