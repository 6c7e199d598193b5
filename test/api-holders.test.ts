import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { projectRoot } from '../src/db/migrations-folder.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { entryArgs } from './support/entry-args.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';
import { wsClient } from './support/ws.js';

// Holders through the API: heartbeat leases lost when their holder dies, fencing tokens, hand-off.

const quiet = createLogger('error', () => {});
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
const dbId = (id: string) => Number(Buffer.from(id, 'base64').toString().split(':')[1]);

type Who = 'alice' | 'bob' | 'carol' | 'admin';

describeEachDatabase('lease holders', (kind) => {
  let db: TestDatabase;
  let app: App;
  const tokens = {} as Record<Who, string>;
  const principals = {} as Record<Who, number>;

  const call = async <T>(who: Who, query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, {
      authorization: `Bearer ${tokens[who]}`,
    });
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  const leaseRow = (id: string) => db.prisma.lease.findUniqueOrThrow({ where: { id: dbId(id) } });

  async function request(who: Who, input: Record<string, unknown>) {
    const data = await call<{ requestLease: { __typename: string; leases?: { id: string }[]; path?: string[] } }>(
      who,
      `mutation ($input: RequestLeaseInput!) { requestLease(input: $input) {
        __typename ... on RequestLeasePayload { leases { id } } ... on ValidationError { path } } }`,
      { input: { resourceType: 'host', ...input } },
    );
    return data.requestLease;
  }

  async function activeLease(who: Who, input: Record<string, unknown> = {}) {
    const id = (await request(who, input)).leases![0]!.id;
    return waitFor(async () => {
      const lease = await leaseRow(id);
      return lease.status === 'ACTIVE' ? { id, lease } : null;
    });
  }

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, allowLocalTransport: true },
      quiet,
    );
    for (const who of ['alice', 'bob', 'carol', 'admin'] as const) {
      const made = await principalWithToken(db, who, { isAdmin: who === 'admin' });
      tokens[who] = made.token;
      principals[who] = made.principal.id;
    }
    const created = await call<{ createBlueprint: { blueprint: { databaseId: number } } }>(
      'admin',
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) {
        ... on BlueprintPayload { blueprint { databaseId } } } }`,
      {
        config: {
          services: [
            {
              name: 'build',
              bindings: [{ name: 'here', address: '127.0.0.1', port: 22, transport: { kind: 'local' } }],
            },
          ],
        },
      },
    );
    // carol may not lease from it: a hand-off to her is refused.
    for (const who of ['alice', 'bob'] as const)
      await db.prisma.authorization.create({
        data: {
          blueprintId: created.createBlueprint.blueprint.databaseId,
          principalId: principals[who],
          blueprintState: 'AUTHORIZED',
        },
      });
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('refuses a heartbeat outside 1 to 3600 seconds, and writes nothing', async () => {
    const before = await db.prisma.lease.count();
    for (const heartbeatSeconds of [0, -5, 3601]) {
      const refused = await request('alice', { heartbeatSeconds });
      expect(refused).toMatchObject({ __typename: 'ValidationError', path: ['heartbeatSeconds'] });
    }
    expect(await db.prisma.lease.count()).toBe(before);
  });

  it.each(['heartbeat', 'subscription'] as const)(
    'releases the lease of a holder killed with SIGKILL (kept alive by %s) within heartbeat + 1 s',
    async (mode) => {
      const heartbeatSeconds = 2;
      const { id, lease } = await activeLease('alice', { heartbeatSeconds });
      expect(lease.fence).toBeGreaterThan(0);
      // The test holds the lease itself until the holder process has started (tsx takes a while).
      const beat = 'mutation ($id: ID!) { heartbeatLease(id: $id) { __typename } }';
      const meanwhile = setInterval(() => void call('alice', beat, { id }).catch(() => {}), 200);
      const holder = spawn(
        process.execPath,
        [...entryArgs('test', 'support', 'holder-process.ts'), app.graphqlUrl, id, mode],
        {
          cwd: projectRoot,
          env: { PATH: process.env['PATH'] ?? '', HOLDER_TOKEN: tokens.alice },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      holder.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      holder.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      try {
        await waitFor(() => output.includes('holding') || output.includes('Error'), 30_000);
        clearInterval(meanwhile);
        expect(output).toContain('holding');
        // Alive past two of its deadlines after the test stopped: the holder process keeps it.
        const handedAt = Date.now() + 250;
        await waitFor(async () => {
          const now = await leaseRow(id);
          return now.status !== 'ACTIVE' || now.lastSeenAt!.getTime() > handedAt + 2 * heartbeatSeconds * 1000;
        }, 20_000);
        expect((await leaseRow(id)).status).toBe('ACTIVE');
      } finally {
        clearInterval(meanwhile);
        holder.kill('SIGKILL');
      }
      const killedAt = Date.now();
      await exited;
      const released = await waitFor(async () => {
        const now = await leaseRow(id);
        return now.status === 'RELEASED' || now.status === 'DESTROYED' ? Date.now() : null;
      }, 20_000);
      expect(released - killedAt).toBeLessThanOrEqual((heartbeatSeconds + 1) * 1000);
      const logs = await db.prisma.log.findMany({ where: { leaseId: dbId(id) }, orderBy: { id: 'asc' } });
      expect(logs.map((l) => l.type)).toContain('lease-holder-lost');
      expect(logs.find((l) => l.type === 'lease-released')?.data).toEqual({ reason: 'holder-lost' });
    },
    60_000,
  );

  it('a gang with heartbeatSeconds lives while any part is seen, and loses every part (holder-lost) when its holder stops', async () => {
    const heartbeatSeconds = 2;
    const gang = `mutation ($input: RequestGangInput!) { requestGang(input: $input) {
      __typename ... on RequestLeasePayload { leases { id } } ... on ValidationError { path } } }`;
    type Gang = { requestGang: { __typename: string; leases?: { id: string }[]; path?: string[] } };
    const parts = [{ resourceType: 'host', count: 3 }];
    const before = await db.prisma.lease.count();
    for (const bad of [0, 3601])
      expect((await call<Gang>('alice', gang, { input: { parts, heartbeatSeconds: bad } })).requestGang).toMatchObject({
        __typename: 'ValidationError',
        path: ['heartbeatSeconds'],
      });
    expect(await db.prisma.lease.count()).toBe(before);

    const ids = (await call<Gang>('alice', gang, { input: { parts, heartbeatSeconds } })).requestGang.leases!.map(
      (l) => l.id,
    );
    expect(ids).toHaveLength(3);
    const rows = () => Promise.all(ids.map(leaseRow));
    await waitFor(async () => (await rows()).every((l) => l.status === 'ACTIVE'));
    expect((await rows()).every((l) => l.heartbeatSeconds === heartbeatSeconds)).toBe(true);

    // Heartbeats of the first part only keep all three past two of their deadlines.
    const beat = 'mutation ($id: ID!) { heartbeatLease(id: $id) { __typename } }';
    const startedAt = Date.now();
    const beating = setInterval(() => void call('alice', beat, { id: ids[0] }).catch(() => {}), 200);
    let stoppedAt: number;
    try {
      await waitFor(async () => {
        const now = await rows();
        return (
          now.some((l) => l.status !== 'ACTIVE') ||
          now.every((l) => l.lastSeenAt!.getTime() > startedAt + 2 * heartbeatSeconds * 1000)
        );
      }, 20_000);
      expect((await rows()).map((l) => l.status)).toEqual(['ACTIVE', 'ACTIVE', 'ACTIVE']);
    } finally {
      clearInterval(beating);
      stoppedAt = Date.now();
    }
    const ended = await waitFor(async () => {
      const now = await rows();
      return now.every((l) => l.status === 'RELEASED' || l.status === 'DESTROYED') ? Date.now() : null;
    }, 20_000);
    // A beat in flight when the interval stopped may still land: heartbeat + 1 s from then.
    expect(ended - stoppedAt).toBeLessThanOrEqual((heartbeatSeconds + 1) * 1000 + 500);
    for (const id of ids) {
      const released = await db.prisma.log.findFirstOrThrow({ where: { leaseId: dbId(id), type: 'lease-released' } });
      expect(released.data, `part ${dbId(id)}`).toEqual({ reason: 'holder-lost' });
    }
  });

  it('keeps a lease without a heartbeat whatever its holder does, and takes heartbeats from its owner only', async () => {
    const { id } = await activeLease('alice', {});
    const beat = `mutation ($id: ID!) { heartbeatLease(id: $id) { __typename ... on Error { message } } }`;
    expect(
      (await call<{ heartbeatLease: { __typename: string } }>('alice', beat, { id })).heartbeatLease.__typename,
    ).toBe('LeasePayload');
    // An admin sees the lease and is told why; for bob it does not exist.
    for (const [who, refusal] of [
      ['bob', 'NotFoundError'],
      ['admin', 'NotAuthorizedError'],
    ] as const)
      expect(
        (await call<{ heartbeatLease: { __typename: string } }>(who, beat, { id })).heartbeatLease.__typename,
      ).toBe(refusal);
    await call('alice', 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id });
    await waitFor(async () => (await leaseRow(id)).status === 'DESTROYED');
    expect(
      (await call<{ heartbeatLease: { __typename: string } }>('alice', beat, { id })).heartbeatLease.__typename,
    ).toBe('IllegalTransitionError');
  });

  it('gives each grant on a resource a higher fence, and hands the command its fence', async () => {
    const first = await activeLease('alice');
    const second = await activeLease('alice');
    expect(second.lease.resourceId).toBe(first.lease.resourceId);
    expect(second.lease.fence!).toBeGreaterThan(first.lease.fence!);
    const output = await runCommand('alice', {
      lease: second.id,
      argv: ['sh', '-c', 'echo "$DRYDOCK_LEASE_ID:$DRYDOCK_LEASE_FENCE"'],
      fence: second.lease.fence,
    });
    expect(output).toEqual({ text: `${second.lease.id}:${second.lease.fence}\n`, exitCode: 0 });
  });

  it('never hands out one fence twice on a resource, and fences grow in grant order (many concurrent grants, several rounds)', async () => {
    for (let round = 0; round < 4; round++) {
      const requested = await Promise.all(
        Array.from({ length: 8 }, () => request(round % 2 ? 'alice' : 'bob', {}).then((r) => r.leases![0]!.id)),
      );
      const granted = await Promise.all(
        requested.map((id) =>
          waitFor(async () => {
            const lease = await leaseRow(id);
            return lease.status === 'ACTIVE' ? lease : null;
          }),
        ),
      );
      const acquired = await db.prisma.log.findMany({
        where: { leaseId: { in: granted.map((l) => l.id) }, type: 'lease-acquired' },
        orderBy: { id: 'asc' },
      });
      const fenceOf = new Map(granted.map((l) => [l.id, l.fence!]));
      const inGrantOrder = acquired.map((log) => fenceOf.get(log.leaseId!)!);
      expect(new Set(inGrantOrder).size).toBe(granted.length);
      expect(inGrantOrder).toEqual([...inGrantOrder].sort((a, b) => a - b));
      const resource = await db.prisma.resource.findUniqueOrThrow({ where: { id: granted[0]!.resourceId! } });
      expect(resource.fenceCounter).toBe(Math.max(...inGrantOrder));
      for (const lease of granted)
        await call(
          lease.ownerId === principals.alice ? 'alice' : 'bob',
          'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }',
          {
            id: gid('Lease', lease.id),
          },
        );
    }
  }, 120_000);

  it('hands a lease to another principal: a new fence, visible to the new owner only, the old fence refused', async () => {
    const { id, lease } = await activeLease('alice');
    const transfer = `mutation ($id: ID!, $to: ID!) { transferLease(id: $id, toPrincipalId: $to) {
      __typename ... on TransferLeasePayload { lease { id fence } } ... on Error { message } } }`;
    type Transfer = {
      transferLease: { __typename: string; lease?: { id: string; fence: number } | null; message?: string };
    };

    // carol may not lease from the blueprint: refused, nothing changes.
    const refused = await call<Transfer>('alice', transfer, { id, to: gid('Principal', principals.carol) });
    expect(refused.transferLease.__typename).toBe('ValidationError');
    expect(await leaseRow(id)).toMatchObject({ ownerId: principals.alice, fence: lease.fence });

    const done = await call<Transfer>('alice', transfer, { id, to: gid('Principal', principals.bob) });
    // The payload is read as alice, who no longer owns it.
    expect(done.transferLease).toEqual({ __typename: 'TransferLeasePayload', lease: null });
    const after = await leaseRow(id);
    expect(after.ownerId).toBe(principals.bob);
    expect(after.fence!).toBeGreaterThan(lease.fence!);

    const read = 'query ($id: ID!) { lease(id: $id) { id fence status } }';
    expect((await call<{ lease: unknown }>('alice', read, { id })).lease).toBeNull();
    expect((await call<{ lease: unknown }>('bob', read, { id })).lease).toEqual({
      id,
      fence: after.fence,
      status: 'ACTIVE',
    });
    const log = await db.prisma.log.findFirstOrThrow({ where: { leaseId: dbId(id), type: 'lease-transferred' } });
    expect(log.data).toEqual({
      fromPrincipalId: principals.alice,
      toPrincipalId: principals.bob,
      byPrincipalId: principals.alice,
      fence: after.fence,
    });

    // The stale fence is refused; alice may not act on the lease at all any more.
    expect(await runCommand('bob', { lease: id, argv: ['true'], fence: lease.fence })).toMatchObject({
      typename: 'ConflictError',
    });
    expect(await runCommand('bob', { lease: id, argv: ['true'], fence: after.fence })).toEqual({
      text: '',
      exitCode: 0,
    });
    expect(await runCommand('alice', { lease: id, argv: ['true'], fence: after.fence })).toMatchObject({
      typename: 'NotFoundError',
    });
    // An admin hands it back.
    const back = await call<Transfer>('admin', transfer, { id, to: gid('Principal', principals.alice) });
    expect(back.transferLease.lease?.fence).toBeGreaterThan(after.fence!);
  });

  it('a lease handed over does not take its recipient past its quota', async () => {
    const transfer = `mutation ($id: ID!, $to: ID!) { transferLease(id: $id, toPrincipalId: $to) {
      __typename ... on Error { message } } }`;
    const quota = `mutation ($p: ID!, $n: Int) { setQuota(principalId: $p, resourceType: "host", maxLeases: $n) { __typename } }`;
    await call('admin', quota, { p: gid('Principal', principals.bob), n: 1 });
    try {
      const first = await activeLease('alice');
      const second = await activeLease('alice');
      expect(
        (
          await call<{ transferLease: unknown }>('alice', transfer, {
            id: first.id,
            to: gid('Principal', principals.bob),
          })
        ).transferLease,
      ).toEqual({ __typename: 'TransferLeasePayload' });
      // bob holds one live host lease, his quota: the second is refused and stays alice's.
      expect(
        (
          await call<{ transferLease: unknown }>('alice', transfer, {
            id: second.id,
            to: gid('Principal', principals.bob),
          })
        ).transferLease,
      ).toEqual({
        __typename: 'ValidationError',
        message: `principal ${principals.bob} does not exist or may not take this lease`,
      });
      // An admin is told why.
      expect(
        (
          await call<{ transferLease: unknown }>('admin', transfer, {
            id: second.id,
            to: gid('Principal', principals.bob),
          })
        ).transferLease,
      ).toEqual({
        __typename: 'ConflictError',
        message: `principal ${principals.bob} is at its quota of 1 live leases of host`,
      });
      expect(await leaseRow(second.id)).toMatchObject({ ownerId: principals.alice, fence: second.lease.fence });
    } finally {
      await call('admin', quota, { p: gid('Principal', principals.bob), n: null });
    }
  });

  async function runCommand(
    who: Who,
    variables: { lease: string; argv: string[]; fence: number | null },
  ): Promise<{ text: string; exitCode: number | null } | { typename: string; message: string }> {
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${tokens[who]}` });
    type Event = { __typename: string; text?: string; exitCode?: number | null; message?: string };
    let text = '';
    try {
      return await new Promise((resolve, reject) => {
        client.subscribe<{ runLeaseCommand: Event }>(
          {
            query: `subscription ($lease: ID!, $argv: [String!]!, $fence: Int) {
              runLeaseCommand(leaseId: $lease, argv: $argv, fence: $fence) {
                __typename ... on LeaseCommandOutput { text } ... on LeaseCommandExit { exitCode } ... on Error { message } } }`,
            variables,
          },
          {
            next: (result) => {
              if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
              const event = result.data!.runLeaseCommand;
              if (event.__typename === 'LeaseCommandOutput') text += event.text;
              else if (event.__typename === 'LeaseCommandExit') resolve({ text, exitCode: event.exitCode ?? null });
              else resolve({ typename: event.__typename, message: event.message ?? '' });
            },
            error: reject,
            complete: () => {},
          },
        );
      });
    } finally {
      await client.dispose();
    }
  }
});
