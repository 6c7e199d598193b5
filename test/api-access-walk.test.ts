// The access walk: for a non-admin principal (bob), every field reachable from every Query root
// field, from node/nodes for an id of every type, and from every Subscription, generated from the
// schema and run over HTTP and graphql-ws against data another principal (alice) owns, asserting
// that nothing of alice's comes back, and no blueprint secret to anyone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'graphql-ws';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { buildSchema } from '../src/schema/index.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { walkOperations, type Operation } from './support/schema-walk.js';
import { principalWithToken } from './support/tokens.js';
import { wsClient } from './support/ws.js';
import { waitFor } from './support/wait.js';

const quiet = createLogger('error', () => {});
const SECRET = 'provisioner-secret-7f3a';

let db: TestDatabase;
let app: App;
const tokens = { admin: '', alice: '', bob: '' };
const gid = (type: string, id: number | bigint) => Buffer.from(`${type}:${id}`).toString('base64');

/** Everything of alice's (and the secret): none of it may reach bob. */
const alice = {
  globalIds: new Set<string>(),
  leaseIds: new Set<number>(),
  principalId: 0,
  logCursors: new Set<string>(),
  strings: [SECRET, 'alice-zone', 'alice-marker', 'hidden-pool', 'cred-marker'],
};
/** Ids to attack with, by argument name. */
const pool: Record<string, string[]> = {};

async function as(who: keyof typeof tokens, query: string, variables: Record<string, unknown> = {}) {
  const { body } = await graphqlRequest<Record<string, unknown>>(app.graphqlUrl, query, variables, {
    authorization: `Bearer ${tokens[who]}`,
  });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data!;
}

async function createBlueprint(name: string, implementation: string, config: unknown) {
  const data = await as(
    'admin',
    `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) {
      ... on BlueprintPayload { blueprint { databaseId } } ... on Error { message } } }`,
    { input: { name, implementation, config } },
  );
  return (data['createBlueprint'] as { blueprint: { databaseId: number } }).blueprint.databaseId;
}

async function activeLease(who: 'alice' | 'bob', attributes: Record<string, unknown>) {
  const data = await as(
    who,
    `mutation ($a: JSON) { requestLease(input: { resourceType: "host", attributes: $a }) {
      ... on RequestLeasePayload { leases { databaseId } } ... on Error { message } } }`,
    { a: attributes },
  );
  const id = (data['requestLease'] as { leases: { databaseId: number }[] }).leases[0]!.databaseId;
  return waitFor(async () => {
    const lease = await db.prisma.lease.findUniqueOrThrow({ where: { id } });
    return lease.status === 'ACTIVE' ? lease : null;
  });
}

beforeAll(async () => {
  db = await createTestDatabase('pglite');
  // The walk's selections are as big as the schema: the limits on query size are the walk's to lift.
  const config = {
    ...loadConfig({}),
    maxQueryDepth: 100,
    maxQueryCost: Number.MAX_SAFE_INTEGER,
    maxQueryTokens: 100_000,
  };
  app = await serve(db, { ...config, port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
  const admin = await principalWithToken(db, 'admin', { isAdmin: true });
  const a = await principalWithToken(db, 'alice-marker');
  const b = await principalWithToken(db, 'bob');
  Object.assign(tokens, { admin: admin.token, alice: a.token, bob: b.token });

  const shared = await createBlueprint('pool', 'host-pool', {
    services: [
      {
        name: 's',
        bindings: [{ name: 'shared', address: '10.0.0.1', port: 22, attributes: { zone: 'shared' } }],
      },
    ],
  });
  const hidden = await createBlueprint('hidden-pool', 'host-pool', {
    services: [
      { name: 's', bindings: [{ name: 'h', address: '10.0.0.3', port: 22, attributes: { zone: 'alice-zone' } }] },
    ],
  });
  const external = await createBlueprint('provisioner', 'external', { url: 'http://127.0.0.1:9', token: SECRET });
  const authorizations = [];
  for (const [blueprintId, principalId] of [
    [shared, a.principal.id],
    [hidden, a.principal.id],
    [shared, b.principal.id],
    [external, b.principal.id],
  ] as const) {
    authorizations.push(
      await db.prisma.authorization.create({ data: { blueprintId, principalId, blueprintState: 'AUTHORIZED' } }),
    );
  }
  const credential = await db.prisma.credential.create({
    data: { name: 'cred-marker', kind: 'ssh-key', secret: 'not a key' },
  });
  const spare = await db.prisma.apiToken.findFirstOrThrow({ where: { principalId: a.principal.id } });

  const aliceOnly = await activeLease('alice', { zone: 'alice-zone' });
  const aliceShared = await activeLease('alice', { zone: 'shared' });
  const bobShared = await activeLease('bob', { zone: 'shared' });

  alice.principalId = a.principal.id;
  for (const lease of [aliceOnly, aliceShared]) {
    alice.leaseIds.add(lease.id);
    alice.globalIds.add(gid('Lease', lease.id));
  }
  alice.globalIds.add(gid('Resource', aliceOnly.resourceId!));
  alice.globalIds.add(gid('Blueprint', hidden));
  alice.globalIds.add(gid('Principal', a.principal.id));
  alice.globalIds.add(gid('ApiToken', spare.id));
  alice.globalIds.add(gid('Credential', credential.id));
  for (const authorization of authorizations.filter((row) => row.principalId === a.principal.id)) {
    alice.globalIds.add(gid('Authorization', authorization.id));
  }
  const logs = await db.prisma.log.findMany({ where: { leaseId: { in: [...alice.leaseIds] } } });
  for (const log of logs) alice.logCursors.add(log.id.toString());
  alice.strings.push(spare.prefix);

  const every = [...alice.globalIds];
  Object.assign(pool, {
    leaseId: [gid('Lease', aliceOnly.id), gid('Lease', aliceShared.id)],
    resourceId: [gid('Resource', aliceOnly.resourceId!), gid('Resource', bobShared.resourceId!)],
    blueprintId: [gid('Blueprint', hidden), gid('Blueprint', shared), gid('Blueprint', external)],
    ownerId: [gid('Principal', a.principal.id)],
    principalId: [gid('Principal', a.principal.id)],
    // Malformed and out-of-range ids too: they must find nothing, never fail unexpectedly.
    id: [...every, gid('Lease', -1), gid('Lease', 7e3), 'Lease:99999999999999999999', 'not-base64!'],
  });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await db?.dispose();
});

const idPool = (name: string) =>
  pool[name === 'ids' || name === 'blueprintIds' ? name.slice(0, -1) : name] ?? pool['id']!;

/** Every way `value` could hold something of alice's; an empty list when it holds nothing. */
function leaksIn(value: unknown, path = '$'): string[] {
  const found: string[] = [];
  const text = JSON.stringify(value) ?? '';
  for (const marker of alice.strings) if (text.includes(marker)) found.push(`${path} contains "${marker}"`);
  const visit = (node: unknown, at: string) => {
    if (Array.isArray(node)) return node.forEach((item, index) => visit(item, `${at}[${index}]`));
    if (typeof node !== 'object' || node === null) return;
    const row = node as Record<string, unknown>;
    if (row['__typename'] === 'Credential') found.push(`${at} is a credential`);
    // The schema guard refused a row some resolver read: a filter that should have left it out did not.
    if ((row['extensions'] as { code?: string } | undefined)?.code === 'NOT_FOUND')
      found.push(`${at}: the guard refused a row no filter should have read (${JSON.stringify(row['path'])})`);
    if (typeof row['id'] === 'string' && alice.globalIds.has(row['id'])) found.push(`${at}.id is alice's ${row['id']}`);
    if (typeof row['cursor'] === 'string' && alice.logCursors.has(row['cursor']))
      found.push(`${at}.cursor is alice's log entry ${row['cursor']}`);
    for (const [key, inner] of Object.entries(row)) {
      if (/(^|_)lease(Database)?Id$/.test(key) && alice.leaseIds.has(inner as number))
        found.push(`${at}.${key} is alice's lease ${String(inner)}`);
      if (/(^|_)(owner|principal|author)Id$/.test(key) && inner === alice.principalId)
        found.push(`${at}.${key} is alice`);
      visit(inner, `${at}.${key}`);
    }
  };
  visit(value, path);
  return found;
}

const schema = buildSchema();
const queries = () => walkOperations(schema, 'query', idPool);
const subscriptions = () => walkOperations(schema, 'subscription', idPool);

function wsResult(client: Client, operation: Operation) {
  return new Promise<unknown>((resolve) => {
    const results: unknown[] = [];
    client.subscribe(
      { query: operation.query, variables: operation.variables },
      {
        next: (value) => results.push(value),
        error: (error) => resolve({ results, error: JSON.stringify(error) }),
        complete: () => resolve(results),
      },
    );
  });
}

describe('a non-admin sees nothing of another principal', () => {
  it('the walk covers every root field and an id of every guarded type', () => {
    const covered = new Set(queries().map((op) => /\{ (\w+)/.exec(op.query)?.[1]));
    expect([...covered].sort()).toEqual(Object.keys(schema.getQueryType()!.getFields()).sort());
    for (const type of ['Lease', 'Resource', 'Blueprint', 'Authorization', 'ApiToken', 'Credential', 'Principal']) {
      expect(pool['id']!.some((id) => Buffer.from(id, 'base64').toString().startsWith(`${type}:`))).toBe(true);
    }
  });

  it('over HTTP: every query field, node and nodes', async () => {
    const leaks: string[] = [];
    for (const operation of queries()) {
      const { status, body } = await graphqlRequest(app.graphqlUrl, operation.query, operation.variables, {
        authorization: `Bearer ${tokens.bob}`,
      });
      leaks.push(...leaksIn(body, operation.label));
      // A refusal is fine; an unexpected error is not (a malformed id must not reach the database).
      for (const error of body.errors ?? []) expect(error.message, operation.label).not.toMatch(/Unexpected error/);
      // Refused before it ran (a limit, a syntax error) would prove nothing.
      expect(status, `${operation.label}: ${JSON.stringify(body.errors)}`).toBe(200);
      const refused = (body.errors ?? []).filter(
        (e) =>
          /GRAPHQL_(PARSE|VALIDATION)_FAILED/.test(String(e.extensions?.['code'])) ||
          /Syntax Error|limit of/.test(e.message),
      );
      expect(refused, operation.label).toEqual([]);
    }
    expect(leaks).toEqual([]);
  });

  it('over graphql-ws: every query field, node and nodes', async () => {
    const client = wsClient(app.graphqlUrl, { token: tokens.bob });
    try {
      const leaks: string[] = [];
      for (const operation of queries()) {
        const result = await wsResult(client, operation);
        // Refused before it ran (a limit, a syntax error) would prove nothing.
        expect(result, operation.label).not.toHaveProperty('error');
        leaks.push(...leaksIn(result, operation.label));
      }
      expect(leaks).toEqual([]);
    } finally {
      await client.dispose();
    }
  });

  it('over graphql-ws: every subscription, replayed from the start and live while alice acts', async () => {
    const client = wsClient(app.graphqlUrl, { token: tokens.bob });
    const streams = subscriptions().map((operation) => {
      const events: unknown[] = [];
      let ended = false;
      const stop = client.subscribe(
        { query: operation.query, variables: operation.variables },
        {
          next: (value) => events.push(value),
          error: (error) => {
            events.push({ error: JSON.stringify(error) });
            ended = true;
          },
          complete: () => {
            ended = true;
          },
        },
      );
      return { operation, events, stop, ended: () => ended };
    });
    try {
      // Bob's own change shows on his leasesChanged once the subscriptions listen; then alice acts,
      // then bob again: whatever alice's actions leaked would arrive before bob's second change.
      const own = streams.find((s) => s.operation.label === 'subscription leasesChanged({})')!;
      const sees = (leaseId: number) => () => JSON.stringify(own.events).includes(gid('Lease', leaseId));
      // A subscription listens some time after its request: bob acts until his change shows.
      await waitFor(async () => {
        const warmUp = await activeLease('bob', { zone: 'shared' });
        return waitFor(sees(warmUp.id), 2_000).catch(() => false);
      }, 60_000);
      const more = await activeLease('alice', { zone: 'shared' });
      alice.leaseIds.add(more.id);
      alice.globalIds.add(gid('Lease', more.id));
      await as('alice', `mutation ($id: ID!) { releaseLease(id: $id) { __typename } }`, { id: gid('Lease', more.id) });
      const last = await activeLease('bob', { zone: 'shared' });
      await waitFor(sees(last.id));
      for (const log of await db.prisma.log.findMany({ where: { leaseId: more.id } })) {
        alice.logCursors.add(log.id.toString());
      }
      const leaks = streams.flatMap((s) => leaksIn(s.events, s.operation.label));
      expect(leaks).toEqual([]);
      // Streams of alice's objects were refused when they started.
      const aliceStreams = streams.filter((s) => /leaseEvents|runLeaseCommand/.test(s.operation.label));
      for (const stream of aliceStreams) expect(JSON.stringify(stream.events), stream.operation.label).toMatch(/rror/);
    } finally {
      for (const stream of streams) stream.stop();
      await client.dispose();
    }
  }, 300_000);
});
