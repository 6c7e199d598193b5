import type { Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSchedulingPass } from '../../src/allocator/scheduler/pass.js';
import { describePostgres } from '../support/database.js';
import {
  bareAllocatorDeps,
  createHarness,
  queueIdOf,
  startWaitingForTurn,
  unwrap,
  withTurnHeld,
  type Harness,
} from '../support/allocator-harness.js';
import { countSocketWrites } from '../support/socket-writes.js';

// Once a process knows a queue's resource type, its pass sends the type's turn and the read of
// the queue's heads in one write. The heads' read runs after the turn is taken, in a snapshot of
// its own: a lease committed while the pass waited for the turn is among them. PostgreSQL only
// (the turn is held by another connection; writes are counted at the socket).

describePostgres('a pass whose queue type this process knows', () => {
  let h: Harness;
  let port: number;
  /** Each statement's text, with the count of writes its connection had made before it was handed to pg. */
  const sent: { text: string; client: pg.Client; write: number }[] = [];
  const restore: (() => void)[] = [];
  beforeAll(async () => {
    h = await createHarness('postgresql');
    port = Number(new URL(h.db.url!).port || 5432);
    const counter = countSocketWrites(port);
    restore.push(counter.restore);
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const first = args[0] as string | { text?: string };
      // Counted per connection: the test's poll and the turn's holder write on their own sockets meanwhile.
      const socket = (this as unknown as { connection: { stream: Socket } }).connection.stream;
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      sent.push({ text, client: this, write: counter.countOf(socket) });
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    restore.push(() => (pg.Client.prototype.query = query));
  });
  afterAll(async () => {
    for (const undo of restore) undo();
    await h.dispose();
  });

  /** The writes in which the pass's turn and its heads' read left: [turn, heads]. */
  const turnAndHeadsWrites = (from: number) => {
    const pass = sent.slice(from);
    // The test's own poll for a pass waiting on the turn names the turn's statement too.
    const turn = pass.find(
      (s) => s.text.includes('UPDATE "ResourceTypeQueue" q SET') && !s.text.includes('pg_stat_activity'),
    );
    const heads = pass.find((s) => s.text.includes('WITH RECURSIVE shapes'));
    // On another connection, the heads could not share the turn's write.
    if (turn && heads && turn.client !== heads.client) return [turn.write, undefined];
    return [turn?.write, heads?.write];
  };

  it('sends the turn and the heads together, and the heads see what committed while it waited', async () => {
    unwrap(await h.services.blueprints.create(h.system, { name: 'roomy', implementation: 'test', config: {} }));
    // No worker runs: every pass is this test's.
    const deps = bareAllocatorDeps(h, { queueTypes: new Map() });
    const first = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const queueId = await queueIdOf(h, 'test-slot');

    // The type is not known yet: the heads wait for the turn's answer.
    let from = sent.length;
    await runSchedulingPass(deps, queueId);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: first.id } })).status).toBe('ACTIVE');
    const [turn1, heads1] = turnAndHeadsWrites(from);
    expect(turn1).toBeDefined();
    expect(heads1).toBeGreaterThan(turn1!);
    expect(deps.queueTypes?.get(queueId)).toBe('test-slot');

    // Known now: one write for both; the turn is held elsewhere while a lease commits.
    let second = 0;
    from = sent.length;
    await withTurnHeld(h, queueId, async () => {
      const pass = await startWaitingForTurn(h, () => runSchedulingPass(deps, queueId));
      second = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' })).id;
      return pass;
    });
    const [turn2, heads2] = turnAndHeadsWrites(from);
    expect(turn2).toBeDefined();
    expect(heads2).toBe(turn2);
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: second } })).status).toBe('ACTIVE');
  });

  it("reads the view of the last pass's first demand with its heads, and uses it for that demand only", async () => {
    await h.reset();
    const create = (name: string, config: Record<string, unknown> = {}) =>
      h.services.blueprints.create(h.system, { name, implementation: 'test', config: { label: name, ...config } });
    unwrap(await create('a'));
    unwrap(await create('b'));
    unwrap(await create('busy', { exclusive: true, maxResources: 1 }));
    const deps = bareAllocatorDeps(h, { queueTypes: new Map(), passDemands: new Map() });
    const request = (label: string) =>
      h.services.leases.request(h.system, { resourceType: 'test-slot', attributes: { label } }).then(unwrap);
    const status = async (id: number) => (await h.db.prisma.lease.findUniqueOrThrow({ where: { id } })).status;
    let queueId = 0;
    /** Runs a pass: the writes its views left in, and whether the first went with the turn. */
    const pass = async () => {
      const from = sent.length;
      if (queueId === 0) {
        queueId = await queueIdOf(h, 'test-slot');
      }
      await runSchedulingPass(deps, queueId);
      const [turn] = turnAndHeadsWrites(from);
      const views = sent.slice(from).filter((s) => s.text.includes("json_build_object('blueprints'"));
      return { views: views.length, ahead: views[0]?.write === turn };
    };

    const a1 = await request('a');
    expect(await pass()).toEqual({ views: 1, ahead: false }); // the type was not known yet
    expect(await status(a1.id)).toBe('ACTIVE');
    // The same demand: its view comes with the turn and is the only one read.
    const a2 = await request('a');
    expect(await pass()).toEqual({ views: 1, ahead: true });
    expect(await status(a2.id)).toBe('ACTIVE');
    // Another demand: the view read ahead is not its own; it reads its own, and is served.
    const b1 = await request('b');
    expect(await pass()).toEqual({ views: 2, ahead: true });
    expect(await status(b1.id)).toBe('ACTIVE');
    // The pass remembers b now; a pass that grants nothing forgets, and the next reads nothing ahead.
    const busy1 = await request('busy');
    expect(await pass()).toEqual({ views: 2, ahead: true });
    expect(await status(busy1.id)).toBe('ACTIVE');
    const busy2 = await request('busy');
    expect(await pass()).toEqual({ views: 1, ahead: true });
    expect(await status(busy2.id)).toBe('PENDING');
    const a3 = await request('a');
    expect(await pass()).toEqual({ views: 1, ahead: false });
    expect(await status(a3.id)).toBe('ACTIVE');
  });
});
