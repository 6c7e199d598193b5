import { expect, it } from 'vitest';
import { describeEachDatabase } from '../support/database.js';
import { harnessForEachTest, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { waitFor } from '../support/wait.js';

// A full host pool is known full from a count of its live hosts instead of the list of every
// taken binding; these are the cases where a count could lie: a binding that frees, and hosts left
// on bindings the config no longer lists (which hold no binding a lease could get).
describeEachDatabase('a full host pool', (kind) => {
  let h: Harness;
  harnessForEachTest(kind, (made) => (h = made));

  const config = (...names: string[]) => ({
    services: [{ name: 'build', bindings: names.map((name, i) => ({ name, address: `10.0.0.${i + 1}`, port: 22 })) }],
  });
  /** A new host lease, once ACTIVE, with the binding of the host it got. */
  const lease = async () => {
    const requested = unwrap(await h.services.leases.request(h.system, { resourceType: 'host' }));
    const active = await waitForLease(h, requested.id, ['ACTIVE']);
    const host = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: active.resourceId! } });
    return { resourceId: host.id, binding: (host.attributes as { binding: string }).binding };
  };
  const destroy = async (resourceId: number) => {
    unwrap(await h.services.resources.release(h.system, resourceId));
    await waitFor(
      async () => (await h.db.prisma.resource.findUniqueOrThrow({ where: { id: resourceId } })).status === 'DESTROYED',
    );
  };

  it('builds on a binding as soon as its host is destroyed', async () => {
    unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: config('a', 'b'),
      }),
    );
    const first = await lease();
    const second = await lease();
    expect([first.binding, second.binding].sort()).toEqual(['build/a', 'build/b']);
    // Full: the next lease shares a host.
    const shared = await lease();
    expect([first.resourceId, second.resourceId]).toContain(shared.resourceId);
    await destroy(first.resourceId);
    const rebuilt = await lease();
    expect(rebuilt.binding).toBe(first.binding);
    expect(rebuilt.resourceId).not.toBe(first.resourceId);
  });

  it('does not count a host on a binding the config no longer lists as holding one of its bindings', async () => {
    const bp = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'pool',
        implementation: 'host-pool',
        config: config('a', 'b'),
      }),
    );
    const onA = await lease();
    const onB = await lease();
    // b leaves the config while its host lives on; c joins.
    unwrap(await h.services.blueprints.update(h.system, bp.id, { config: config('a', 'c') }));
    const onC = await lease();
    expect(onC.binding).toBe('build/c');
    // Three live hosts for two bindings, and the pool is full: the next lease shares a or c.
    const shared = await lease();
    expect([onA.resourceId, onC.resourceId]).toContain(shared.resourceId);
    // c frees; the count of live hosts (two) still equals the bindings, but one of them is b's.
    await destroy(onC.resourceId);
    const rebuilt = await lease();
    expect(rebuilt.binding).toBe('build/c');
    expect(rebuilt.resourceId).not.toBe(onC.resourceId);
    expect(onB.binding).toBe('build/b');
  });
});
