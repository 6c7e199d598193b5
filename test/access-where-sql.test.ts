// whereSql writes the access policy's rules as SQL for the statements Prisma cannot write (a page
// per parent, src/schema/nested-pages.ts). Each rule, for each kind of actor, must select exactly
// the rows Prisma selects for the same where: a rule changed into a shape it cannot write throws
// here, and one it wrote differently selects other rows.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Actor } from '../src/access/actor.js';
import { GUARDED_TYPES, visibleWhere, type GuardedType } from '../src/access/policy.js';
import { whereSql } from '../src/access/where-sql.js';
import { rawQueries } from '../src/db/raw-sql.js';
import { Prisma } from '../src/generated/prisma/client.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';

describeEachDatabase('the access policy as SQL', (kind) => {
  let db: TestDatabase;
  const actors: Record<string, Actor> = {};

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const principal = (name: string, isAdmin = false) =>
      db.prisma.principal.create({ data: { name, kind: 'USER', isAdmin } });
    const [alice, bob, admin] = [await principal('alice'), await principal('bob'), await principal('admin', true)];
    actors['admin'] = { principalId: admin.id, name: 'admin', principalIsAdmin: true, scopes: ['ADMIN'] };
    actors['alice'] = { principalId: alice.id, name: 'alice', principalIsAdmin: false, scopes: ['READ', 'LEASE'] };
    actors['alice, read-only'] = { principalId: alice.id, name: 'alice', principalIsAdmin: false, scopes: ['READ'] };
    actors['alice, no READ'] = { principalId: alice.id, name: 'alice', principalIsAdmin: false, scopes: ['LEASE'] };
    actors['bob'] = { principalId: bob.id, name: 'bob', principalIsAdmin: false, scopes: ['READ', 'LEASE'] };
    actors['admin, read-only token'] = {
      principalId: admin.id,
      name: 'admin',
      principalIsAdmin: true,
      scopes: ['READ'],
    };

    const blueprint = (name: string, createdById: number | null) =>
      db.prisma.blueprint.create({ data: { name, implementation: 'host-pool', resourceType: 'host', createdById } });
    const mine = await blueprint('alices', alice.id);
    const authorized = await blueprint('authorized', admin.id);
    const others = await blueprint('others', null);
    await db.prisma.authorization.create({ data: { blueprintId: authorized.id, principalId: alice.id } });
    await db.prisma.authorization.create({ data: { blueprintId: others.id, principalId: bob.id } });
    const statuses = ['PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'DESTROYED'] as const;
    let n = 0;
    for (const bp of [mine, authorized, others]) {
      for (const owner of [alice.id, bob.id, null]) {
        for (const status of statuses) {
          const resource = await db.prisma.resource.create({
            data: { blueprintId: bp.id, type: 'host', name: `h${n++}`, status: 'ACTIVE' },
          });
          const lease = await db.prisma.lease.create({
            data: { resourceType: 'host', status, ownerId: owner, resourceId: resource.id },
          });
          await db.prisma.log.createMany({
            data: [
              { type: 'lease-requested', leaseId: lease.id, resourceId: resource.id },
              { type: 'resource-activated', resourceId: resource.id },
              { type: 'blueprint-updated', blueprintId: bp.id },
            ],
          });
        }
      }
    }
    for (const who of [alice, bob]) {
      await db.prisma.apiToken.create({
        data: { principalId: who.id, name: `${who.name}'s`, tokenHash: `hash-${who.name}`, prefix: 'p' },
      });
      await db.prisma.credential.create({
        data: { name: `key-${who.name}`, kind: 'SSH_KEY', secret: 's', createdById: who.id },
      });
    }
  });
  afterAll(async () => {
    await db?.dispose();
  });

  const delegate = (type: GuardedType) =>
    (db.prisma as unknown as Record<string, { findMany(args: object): Promise<{ id: number | bigint }[]> }>)[
      type.charAt(0).toLowerCase() + type.slice(1)
    ]!;

  it('selects the rows Prisma selects, for every rule and every kind of actor', async () => {
    const raw = await rawQueries(db);
    for (const [who, actor] of Object.entries(actors)) {
      for (const type of GUARDED_TYPES) {
        const where = visibleWhere(actor, type);
        const viaPrisma = await delegate(type).findMany({ where, select: { id: true }, orderBy: { id: 'asc' } });
        const viaSql = await raw.$queryRaw<{ id: number | bigint }[]>(
          Prisma.sql`SELECT r.id FROM ${Prisma.raw(`"${type}"`)} AS r WHERE ${whereSql(type, 'r', where)} ORDER BY r.id`,
        );
        expect(
          viaSql.map((row) => String(row.id)),
          `${type} for ${who}`,
        ).toEqual(viaPrisma.map((row) => String(row.id)));
      }
    }
    // Not vacuous: alice sees some of each kind of row and not all of them.
    const leases = await delegate('Lease').findMany({ where: visibleWhere(actors['alice']!, 'Lease') });
    expect(leases.length).toBeGreaterThan(0);
    expect(leases.length).toBeLessThan(await db.prisma.lease.count());
  });

  it('refuses a where it cannot write rather than guessing', () => {
    expect(() => whereSql('Lease', 'r', { ownerId: { gt: 1 } })).toThrow(/cannot write/);
    expect(() => whereSql('Lease', 'r', { logs: { every: { type: 'x' } } })).toThrow(/cannot write/);
    expect(() => whereSql('Lease', 'r', { NOT: { ownerId: 1 } })).toThrow(/cannot write/);
    expect(() => whereSql('Lease', 'r', { createdAt: new Date() })).toThrow(/cannot write/);
    expect(() => whereSql('Lease', 't1', {})).toThrow(/alias/);
  });
});
