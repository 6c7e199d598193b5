import { afterAll, beforeAll, expect, it } from 'vitest';
import { allocationView, type AllocationView } from '../../src/allocator/allocation-view.js';
import type { TxContext } from '../../src/allocator/context.js';
import { KnownResourceRows, type ListedResource } from '../../src/allocator/known-resource-rows.js';
import { inUpdateTransaction } from '../../src/allocator/transaction.js';
import type { Lease } from '../../src/generated/prisma/client.js';
import { describeEachDatabase } from '../support/database.js';
import { bareAllocatorDeps, createHarness, unwrap, type Harness } from '../support/allocator-harness.js';

// A view of the pool sends a resource's row only when this process does not hold that version of
// it already (allocation-view.ts, known-resource-rows.ts). Whatever it leaves out, the view must
// be what a view read afresh gives: after a change, after two changes to one row in one
// transaction (read in between), after a change rolled back, and after the table is rewritten.

/** Records which rows each view sent whole. */
class RecordingRows extends KnownResourceRows {
  readonly whole: number[][] = [];
  override fill(resourceType: string, listed: readonly ListedResource[], keep: number) {
    this.whole.push(listed.filter((r) => r.row !== null).map((r) => r.id));
    return super.fill(resourceType, listed, keep);
  }
}

/** What a lease sees of the view's resources. */
const seen = (view: AllocationView) =>
  view.resources?.rows?.map(({ row, live }) => ({ id: row['id'], attributes: row['attributes'], live, row })) ?? [];

describeEachDatabase('a view of the pool with the rows this process knows', (kind) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(kind);
  });
  afterAll(() => h.dispose());

  it('sends only changed rows, and always gives what a view read afresh gives', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, { name: 'pool', implementation: 'test', config: {} }),
    );
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const resource = await h.db.prisma.resource.create({
        data: { blueprintId: bp.id, type: 'test-slot', name: `pool-${i}`, attributes: { n: i }, status: 'ACTIVE' },
      });
      ids.push(resource.id);
    }
    const lease: Lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'test-slot' }));
    const known = new RecordingRows();
    const cached = bareAllocatorDeps(h, { knownResourceRows: known });
    const fresh = bareAllocatorDeps(h);
    /** The view through the known rows, checked against a fresh one in the same transaction; the rows it sent whole. */
    const view = async (ctx: TxContext) => {
      const through = await allocationView(ctx, lease, true);
      const afresh = await allocationView({ ...ctx, deps: fresh }, lease, true);
      expect(seen(through)).toEqual(seen(afresh));
      return {
        whole: [...known.whole.at(-1)!].sort((a, b) => a - b),
        attributes: seen(through).map((r) => r.attributes),
      };
    };
    const read = () => inUpdateTransaction(cached, view);
    const [a, b] = ids as [number, number];
    const setAttributes = (ctx: TxContext, id: number, n: number) =>
      ctx.tx.$executeRaw`UPDATE "Resource" SET attributes = jsonb_build_object('n', ${n}::int) WHERE id = ${id}`;

    expect((await read()).whole).toEqual(ids);
    expect((await read()).whole).toEqual([]);

    await h.db.prisma.resource.update({ where: { id: a }, data: { attributes: { n: 10 } } });
    const changed = await read();
    expect(changed.whole).toEqual([a]);
    expect(changed.attributes).toContainEqual({ n: 10 });

    // Two versions of one row in one transaction, each read: each is sent, and neither is taken for the other.
    await inUpdateTransaction(cached, async (ctx) => {
      await setAttributes(ctx, b, 20);
      expect((await view(ctx)).whole).toEqual([b]);
      await setAttributes(ctx, b, 21);
      const second = await view(ctx);
      expect(second.whole).toEqual([b]);
      expect(second.attributes).toContainEqual({ n: 21 });
    });
    expect((await read()).whole).toEqual([]);

    // A version read inside a transaction that rolled back is never the row's.
    await expect(
      inUpdateTransaction(cached, async (ctx) => {
        await setAttributes(ctx, a, 30);
        expect((await view(ctx)).whole).toEqual([a]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const after = await read();
    expect(after.whole).toEqual([a]);
    expect(after.attributes).toContainEqual({ n: 10 });
    expect(after.attributes).not.toContainEqual({ n: 30 });

    // Rewritten, the table's rows may sit where other versions sat: every row is sent again.
    await h.db.prisma.$executeRawUnsafe('VACUUM FULL "Resource"');
    expect((await read()).whole).toEqual(ids);
    expect((await read()).whole).toEqual([]);
  });
});

it('a known row replaced between a view being sent and answered: the view is read again', () => {
  const rows = new KnownResourceRows();
  const row = (n: number) => ({ id: 1, n });
  expect(rows.fill('t', [{ id: 1, version: 'v1', row: row(1), live: 0 }], 64)).toEqual([{ row: row(1), live: 0 }]);
  expect(rows.offer('t')).toEqual({ ids: [1], versions: ['v1'] });
  // Another view answered first with a newer version; this one's answer left v1 out as known.
  rows.fill('t', [{ id: 1, version: 'v2', row: row(2), live: 1 }], 64);
  expect(rows.fill('t', [{ id: 1, version: 'v1', row: null, live: 0 }], 64)).toBeNull();
  expect(rows.fill('t', [{ id: 1, version: 'v2', row: null, live: 1 }], 64)).toEqual([{ row: row(2), live: 1 }]);
  // Past `keep`, only the rows the last view listed are kept.
  const many = Array.from({ length: 5 }, (_, i) => ({ id: 10 + i, version: 'v', row: row(i), live: 0 }));
  rows.fill('t', many, 3);
  expect(rows.offer('t').ids).toEqual(many.map((r) => r.id));
  expect(rows.offer('other')).toEqual({ ids: [], versions: [] });
});
