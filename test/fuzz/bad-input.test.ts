import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { httpCase, type HttpCase } from './http-cases.js';
import { createHttpSender, healthz, type HttpOutcome } from './http-sender.js';
import { knownDefect } from './known-defects.js';
import { leakedInternals } from './leaks.js';
import { Prng, seedFromEnv } from '../support/prng.js';
import { snapshotTables } from './snapshot.js';
import { wsCase, type WsCase } from './ws-cases.js';
import { runWsCase, type WsOutcome } from './ws-sender.js';

// FUZZ_SEED replays a run; FUZZ_COUNT makes it longer or shorter. Each run draws a new seed, so
// the cases add up over runs: a run's share is sized to keep the suite within CI's time on two
// cores (each category still gets dozens to hundreds of cases on each database).
const seed = seedFromEnv('FUZZ_SEED');
const total = Number(process.env['FUZZ_COUNT'] ?? 4_000);
const concurrency = 20;
const wsShare = 0.3;

/** Close codes that say "the server broke", the WebSocket analogue of a 5xx. */
const brokenCloseCodes = new Set([1006, 1011, 4500]);

type Case = { transport: 'http'; c: HttpCase } | { transport: 'ws'; c: WsCase };

async function seedData(db: TestDatabase): Promise<void> {
  // A worker is needed to bring the lease to ACTIVE; the fuzzed server then runs without one, so
  // that nothing but the fuzz traffic could change a row.
  const seeding = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
  try {
    await graphqlRequest(
      seeding.graphqlUrl,
      `mutation { createBlueprint(input: { name: "hosts", implementation: "host-pool",
        config: { services: [{ name: "s", bindings: [{ name: "h1", address: "10.0.0.1", port: 22 }] }] } }) { __typename } }`,
    );
    await graphqlRequest(seeding.graphqlUrl, 'mutation { createApiToken(input: { name: "ci" }) { __typename } }');
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      seeding.graphqlUrl,
      'mutation { requestLease(input: { resourceType: "host" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    for (let i = 0; i < 400; i++) {
      const lease = await graphqlRequest<{ lease: { status: string } }>(
        seeding.graphqlUrl,
        'query ($id: ID!) { lease(id: $id) { status } }',
        { id: leaseId },
      );
      if (lease.body.data?.lease.status === 'ACTIVE') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the seed lease never became ACTIVE');
  } finally {
    await seeding.close();
  }
}

const quiet = createLogger('error', () => {});

function judgeHttp(c: HttpCase, outcome: HttpOutcome): string | null {
  if (outcome.kind === 'no-response') {
    // Refusing an oversized upload early may reset the connection under the client: not a fault.
    return c.category === 'huge-body' ? null : `no response: ${outcome.error}`;
  }
  if (outcome.status >= 500) return `status ${outcome.status}: ${outcome.body.slice(0, 300)}`;
  const leak = leakedInternals(outcome.body);
  return leak ? `internals in the response: ${leak}` : null;
}

function judgeWs(outcome: WsOutcome): string | null {
  if (outcome.upgradeStatus !== undefined && outcome.upgradeStatus >= 500) {
    return `upgrade refused with ${outcome.upgradeStatus}`;
  }
  // ws's client gives up with 1006 itself when the server picks none of the subprotocols offered.
  if (outcome.close?.code === 1006 && /subprotocol/i.test(outcome.error ?? '')) return null;
  if (outcome.close && brokenCloseCodes.has(outcome.close.code)) {
    return `closed with ${outcome.close.code} "${outcome.close.reason}"`;
  }
  for (const text of [...outcome.messages, outcome.close?.reason ?? '']) {
    const leak = leakedInternals(text);
    if (leak) return `internals in a message: ${leak}`;
  }
  return null;
}

describeEachDatabase('bad input (fuzz)', (kind) => {
  let db: TestDatabase;
  let app: App;
  const serverErrors: string[] = [];
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    await seedData(db);
    const logger = createLogger('error', (line) => serverErrors.push(line));
    app = await serve(
      db,
      // The rate limit would turn most of the traffic into 429s before it reached anything interesting.
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, workerConcurrency: 0, rateLimitPerMinute: 1e9 },
      logger,
    );
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it(`answers ${total} malformed, oversized, deep and wrongly typed requests without a 5xx, a leak or a change`, async () => {
    console.log(`[fuzz ${kind}] seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
    const r = new Prng(seed);
    const cases: Case[] = Array.from({ length: total }, () =>
      r.next() < wsShare ? { transport: 'ws', c: wsCase(r) } : { transport: 'http', c: httpCase(r) },
    );
    // graphql-ws reports what it thinks are server faults on console.error, stack and all: count
    // them here instead of flooding the test output (the failures below say which inputs).
    const consoleErrors: string[] = [];
    const consoleSpy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      consoleErrors.push(args.map(String).join(' ').slice(0, 200));
    });
    const before = await snapshotTables(db);
    const http = createHttpSender(app.graphqlUrl, concurrency);
    const wsUrl = app.graphqlUrl.replace(/^http/, 'ws');
    const failures: string[] = [];
    const known = new Map<string, { n: number; example: string }>();
    const fail = (index: number, category: string, problem: string, input: string) => {
      const defect = knownDefect(category, problem);
      if (!defect) return failures.push(`#${index} ${problem}\n    input: ${input}`);
      const entry = known.get(defect.id) ?? { n: 0, example: `${problem.slice(0, 120)} ← ${input.slice(0, 200)}` };
      entry.n++;
      known.set(defect.id, entry);
    };
    const counts = new Map<string, { n: number; outcomes: Map<string, number> }>();
    const tally = (category: string, outcome: string) => {
      const entry = counts.get(category) ?? { n: 0, outcomes: new Map<string, number>() };
      entry.n++;
      entry.outcomes.set(outcome, (entry.outcomes.get(outcome) ?? 0) + 1);
      counts.set(category, entry);
    };
    const started = Date.now();
    // CPU rather than wall time says whether the server got costlier: the machine is shared.
    const cpuStarted = process.cpuUsage();
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const index = next++;
        const item = cases[index]!;
        if (index > 0 && index % 1_000 === 0) {
          const status = await healthz(app.url);
          if (status !== 200) failures.push(`#${index}: /healthz answered ${status}`);
        }
        if (item.transport === 'http') {
          const outcome = await http.send(item.c);
          tally(item.c.category, outcome.kind === 'response' ? String(outcome.status) : 'reset');
          const problem = judgeHttp(item.c, outcome);
          if (problem) fail(index, item.c.category, problem, item.c.describe());
        } else {
          const outcome = await runWsCase(wsUrl, item.c);
          tally(
            item.c.category,
            outcome.upgradeStatus !== undefined
              ? `http ${outcome.upgradeStatus}`
              : outcome.close
                ? `close ${outcome.close.code}`
                : outcome.timedOut
                  ? 'no reply'
                  : 'answered',
          );
          const problem = judgeWs(outcome);
          if (problem) fail(index, item.c.category, problem, item.c.describe());
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    http.close();
    consoleSpy.mockRestore();
    const seconds = (Date.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuStarted);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;

    expect(await healthz(app.url)).toBe(200);
    const after = await snapshotTables(db);
    const lines = [...counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([category, { n, outcomes }]) =>
          `  ${category.padEnd(32)} ${String(n).padStart(5)}  ${[...outcomes.entries()].map(([o, k]) => `${o}×${k}`).join(' ')}`,
      );
    console.log(
      `[fuzz ${kind}] ${total} cases in ${seconds.toFixed(1)} s, ${cpuSeconds.toFixed(1)} s of CPU (seed ${seed}); ${failures.length} failures; ` +
        `${serverErrors.length} server error log lines, ${consoleErrors.length} console.error calls\n${lines.join('\n')}`,
    );
    for (const [id, { n, example }] of known) {
      console.log(`[fuzz ${kind}] KNOWN DEFECT ${id}: ${n} cases, e.g. ${example}`);
    }
    const bySignature = new Map<string, { n: number; example: string }>();
    for (const failure of failures) {
      const signature = `${failure
        .split('\n')[0]!
        .replace(/^#\d+ /, '')
        .replace(/\d+/g, 'N')
        .slice(0, 100)} [${/input: ([\w-]+)/.exec(failure)?.[1]}]`;
      const entry = bySignature.get(signature) ?? { n: 0, example: failure };
      entry.n++;
      bySignature.set(signature, entry);
    }
    const grouped = [...bySignature.entries()].map(
      ([sig, { n, example }]) => `${n}× ${sig}\n  e.g. ${example.slice(0, 600)}`,
    );
    console.log(grouped.join('\n'));
    expect(grouped, `seed ${seed}: ${failures.length} failures`).toEqual([]);
    expect(after, `seed ${seed}: the fuzz traffic changed data`).toEqual(before);
  }, 240_000);
});
