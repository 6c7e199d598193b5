import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { principalWithToken as withToken } from './support/tokens.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { collect, wsClient } from './support/ws.js';

// runLeaseCommand end to end: a real server, a host-pool blueprint whose binding runs commands on
// this machine (the local transport, switched on for this server), and graphql-ws clients.

const quiet = createLogger('error', () => {});

type Event =
  | { __typename: 'LeaseCommandOutput'; stream: 'STDOUT' | 'STDERR'; text: string }
  | { __typename: 'LeaseCommandExit'; exitCode: number | null; timedOut: boolean }
  | { __typename: string; message: string };

const RUN = `subscription ($lease: ID!, $argv: [String!]!, $timeout: Int) {
  runLeaseCommand(leaseId: $lease, argv: $argv, timeoutSeconds: $timeout) {
    __typename
    ... on LeaseCommandOutput { stream text }
    ... on LeaseCommandExit { exitCode timedOut }
    ... on Error { message }
  }
}`;

/** A zombie (killed, not yet reaped by init) counts as gone. */
function running(pid: number): boolean {
  if (!existsSync(`/proc/${pid}/stat`)) return false;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeEachDatabase('runLeaseCommand', (kind) => {
  let db: TestDatabase;
  let app: App;
  const tokens: Record<'admin' | 'alice' | 'bob', string> = { admin: '', alice: '', bob: '' };
  const leases: Record<'local' | 'bare' | 'released', string> = { local: '', bare: '', released: '' };

  const principalWithToken = (name: string, isAdmin: boolean) => withToken(db, name, { isAdmin });

  const call = async <T>(who: keyof typeof tokens, query: string, variables: Record<string, unknown> = {}) => {
    const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, {
      authorization: `Bearer ${tokens[who]}`,
    });
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data!;
  };

  async function activeLease(who: keyof typeof tokens, attributes: Record<string, unknown>): Promise<string> {
    const requested = await call<{ requestLease: { leases: { id: string }[] } }>(
      who,
      'mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) { ... on RequestLeasePayload { leases { id } } } }',
      { a: attributes },
    );
    const id = requested.requestLease.leases[0]!.id;
    await eventually(async () => {
      const { lease } = await call<{ lease: { status: string } }>(
        who,
        'query ($id: ID!) { lease(id: $id) { status } }',
        {
          id,
        },
      );
      return lease.status === 'ACTIVE' ? true : undefined;
    });
    return id;
  }

  /** Runs a command over its own graphql-ws connection; each event with the time it arrived. */
  function run(
    who: keyof typeof tokens | null,
    variables: { lease: string; argv: string[]; timeout?: number },
    onEvent?: (event: Event, stop: () => void) => void,
    target: App = app,
  ): Promise<{ event: Event; at: number }[]> {
    const client = wsClient(target.graphqlUrl, who ? { authorization: `Bearer ${tokens[who]}` } : undefined);
    const events: { event: Event; at: number }[] = [];
    return new Promise<{ event: Event; at: number }[]>((resolve, reject) => {
      const unsubscribe = client.subscribe<{ runLeaseCommand: Event }>(
        { query: RUN, variables },
        {
          next: (result) => {
            if (result.errors) return reject(new Error(JSON.stringify(result.errors)));
            const event = result.data!.runLeaseCommand;
            events.push({ event, at: Date.now() });
            onEvent?.(event, () => {
              unsubscribe();
              resolve(events);
            });
          },
          // A refused connection closes with a CloseEvent (its code says why); keep it as it is.
          error: (error: unknown) => reject(error as Error),
          complete: () => resolve(events),
        },
      );
    }).finally(() => client.dispose());
  }

  const text = (events: { event: Event }[], stream: 'STDOUT' | 'STDERR') =>
    events
      .map(({ event }) => event)
      .filter((e): e is Extract<Event, { stream: string }> => 'stream' in e && e.stream === stream)
      .map((e) => e.text)
      .join('');

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, allowLocalTransport: true },
      quiet,
    );
    const admin = await principalWithToken('admin', true);
    const alice = await principalWithToken('alice', false);
    const bob = await principalWithToken('bob', false);
    Object.assign(tokens, { admin: admin.token, alice: alice.token, bob: bob.token });
    const created = await call<{ createBlueprint: { blueprint: { databaseId: number } } }>(
      'admin',
      `mutation ($config: JSON!) { createBlueprint(input: { name: "hosts", implementation: "host-pool", config: $config }) {
        ... on BlueprintPayload { blueprint { databaseId } } } }`,
      {
        config: {
          services: [
            {
              name: 'build',
              bindings: [
                {
                  name: 'here',
                  address: '127.0.0.1',
                  port: 22,
                  attributes: { via: 'local' },
                  transport: { kind: 'local' },
                },
                { name: 'bare', address: '10.0.0.9', port: 22, attributes: { via: 'nothing' } },
              ],
            },
          ],
        },
      },
    );
    await db.prisma.authorization.create({
      data: {
        blueprintId: created.createBlueprint.blueprint.databaseId,
        principalId: alice.principal.id,
        blueprintState: 'AUTHORIZED',
      },
    });
    leases.local = await activeLease('alice', { via: 'local' });
    leases.bare = await activeLease('alice', { via: 'nothing' });
    leases.released = await activeLease('alice', { via: 'local' });
    await call('alice', 'mutation ($id: ID!) { releaseLease(id: $id) { __typename } }', { id: leases.released });
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('streams stdout and stderr as the command writes them, then its exit code', async () => {
    const events = await run('alice', {
      lease: leases.local,
      argv: ['sh', '-c', 'echo first; echo oops >&2; sleep 1; echo second; exit 3'],
    });
    expect(text(events, 'STDOUT')).toBe('first\nsecond\n');
    expect(text(events, 'STDERR')).toBe('oops\n');
    const last = events.at(-1)!;
    expect(last.event).toEqual({ __typename: 'LeaseCommandExit', exitCode: 3, timedOut: false });
    // "first" reached the client while the command still slept.
    expect(last.at - events[0]!.at).toBeGreaterThanOrEqual(800);
  });

  it("records each run in the lease's log: who started what, and how it ended", async () => {
    await run('alice', { lease: leases.local, argv: ['printf', '%s', 'a; b', '$(id)'] });
    const { logs } = await call<{ logs: { edges: { node: { type: string; data: Record<string, unknown> } }[] } }>(
      'alice',
      'query ($id: ID!) { logs(leaseId: $id, last: 2) { edges { node { type data } } } }',
      { id: leases.local },
    );
    const alice = await db.prisma.principal.findUniqueOrThrow({ where: { name: 'alice' } });
    expect(logs.edges.map((edge) => edge.node)).toEqual([
      { type: 'lease-command-started', data: { argv: ['printf', '%s', 'a; b', '$(id)'], principalId: alice.id } },
      {
        type: 'lease-command-finished',
        data: { argv: ['printf', '%s', 'a; b', '$(id)'], exitCode: 0, timedOut: false, durationMs: expect.any(Number) },
      },
    ]);
  });

  it("delivers a command's log entries to leaseEvents as they commit, with no status change after them", async () => {
    const leaseId = Number(Buffer.from(leases.local, 'base64').toString().split(':')[1]);
    const newest = await db.prisma.log.findFirstOrThrow({ where: { leaseId }, orderBy: { id: 'desc' } });
    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${tokens.alice}` });
    type Item = { leaseEvents: { cursor: string; status: string; log: { type: string } } };
    try {
      // From the start of the log: once the replay reached the newest entry, the stream is live.
      let live!: () => void;
      const replayed = new Promise<void>((resolve) => (live = resolve));
      const stream = collect<Item>(
        client,
        {
          query: 'subscription ($id: ID!) { leaseEvents(leaseId: $id, after: "0") { cursor status log { type } } }',
          variables: { id: leases.local },
        },
        (items) => {
          if (items.at(-1)!.leaseEvents.cursor === newest.id.toString()) live();
          return items.some(
            (item) =>
              BigInt(item.leaseEvents.cursor) > newest.id && item.leaseEvents.log.type === 'lease-command-finished',
          );
        },
      );
      await replayed;
      await run('alice', { lease: leases.local, argv: ['true'] });
      const items = await stream.done;
      expect(
        items.filter((item) => BigInt(item.leaseEvents.cursor) > newest.id).map(({ leaseEvents }) => leaseEvents),
      ).toEqual([
        { cursor: expect.any(String), status: 'ACTIVE', log: { type: 'lease-command-started' } },
        { cursor: expect.any(String), status: 'ACTIVE', log: { type: 'lease-command-finished' } },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('kills a command that runs past its timeout', async () => {
    const started = Date.now();
    const events = await run('alice', { lease: leases.local, argv: ['sleep', '30'], timeout: 1 });
    expect(events.at(-1)?.event).toEqual({ __typename: 'LeaseCommandExit', exitCode: null, timedOut: true });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('kills the command when the subscriber goes away', async () => {
    let pid = 0;
    await run('alice', { lease: leases.local, argv: ['sh', '-c', 'echo $$; exec sleep 60'] }, (event, stop) => {
      if ('text' in event) {
        pid = Number(event.text.trim());
        stop();
      }
    });
    expect(pid).toBeGreaterThan(0);
    await eventually(() => (running(pid) ? undefined : true));
    const finished = await eventually(async () =>
      (await db.prisma.log.findMany({ where: { type: 'lease-command-finished' } })).find((log) =>
        JSON.stringify(log.data).includes('exec sleep 60'),
      ),
    );
    expect(finished.data).toMatchObject({ exitCode: null, timedOut: false });
  });

  it("lets the lease's owner and admins run commands, and nobody else", async () => {
    const argv = ['echo', 'hi'];
    expect((await run('admin', { lease: leases.local, argv })).at(-1)?.event).toMatchObject({ exitCode: 0 });
    expect((await run('bob', { lease: leases.local, argv })).map(({ event }) => event)).toEqual([
      // Another's lease does not exist for bob: the same answer as for an id that names nothing.
      { __typename: 'NotFoundError', message: expect.stringMatching(/^lease \d+ does not exist$/) },
    ]);
    await expect(run(null, { lease: leases.local, argv })).rejects.toMatchObject({ code: 4403 });
  });

  it('answers with a typed error when the command cannot run', async () => {
    const only = async (variables: { lease: string; argv: string[]; timeout?: number }) => {
      const events = await run('alice', variables);
      expect(events).toHaveLength(1);
      return events[0]!.event;
    };
    const missing = Buffer.from('Lease:999999').toString('base64');
    expect(await only({ lease: missing, argv: ['true'] })).toMatchObject({ __typename: 'NotFoundError' });
    expect(await only({ lease: leases.local, argv: [] })).toMatchObject({
      __typename: 'ValidationError',
      message: 'give the command to run',
    });
    expect(await only({ lease: leases.local, argv: ['true'], timeout: 0 })).toMatchObject({
      __typename: 'ValidationError',
    });
    // The lease is fine; its host cannot run commands: a conflict with the host's state, not bad input.
    expect(await only({ lease: leases.bare, argv: ['true'] })).toMatchObject({
      __typename: 'ConflictError',
      message: expect.stringMatching(
        /^lease \d+'s host build\/bare cannot run commands: binding build\/bare has no transport configured$/,
      ),
    });
    await eventually(async () => {
      const event = await only({ lease: leases.released, argv: ['true'] });
      return event.__typename === 'IllegalTransitionError' ? event : undefined;
    });
  });

  it('refuses the local transport on a server that has not enabled it', async () => {
    const strict = await serve(
      db,
      { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false, workerConcurrency: 0 },
      quiet,
    );
    try {
      const events = await run('alice', { lease: leases.local, argv: ['true'] }, undefined, strict);
      expect(events.map(({ event }) => event)).toEqual([
        {
          __typename: 'ConflictError',
          message: expect.stringMatching(
            /cannot run commands: local transport is disabled \(set ALLOW_LOCAL_TRANSPORT=true/,
          ),
        },
      ]);
    } finally {
      await strict.close();
    }
  });

  it("shows how the lease's host is reached in its interfaces, without secrets", async () => {
    const { lease } = await call<{ lease: { interfaces: unknown } }>(
      'alice',
      'query ($id: ID!) { lease(id: $id) { interfaces } }',
      { id: leases.local },
    );
    expect(lease.interfaces).toMatchObject({ ssh: { host: '127.0.0.1', port: 22 }, transport: { kind: 'local' } });
  });
});
