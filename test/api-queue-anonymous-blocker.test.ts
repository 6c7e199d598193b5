import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { blockerMessage } from '../src/schema/lease-blocker.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { waitFor } from './support/wait.js';

// Someone else's waiting lease is anonymous in `queue`: its blocker's details (the quota number,
// the ids it waits for) are stripped, so its message must read without them, never "undefined".

const quiet = createLogger('error', () => {});
const gid = (type: string, id: number) => Buffer.from(`${type}:${id}`).toString('base64');
type Who = 'alice' | 'bob' | 'admin';
type Entry = { anonymous: boolean; blockerReason: string | null; blockerMessage: string | null };

describeEachDatabase('queue entries of other owners', (kind) => {
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

  const queue = async (who: Who) =>
    (
      await call<{ queue: { entries: Entry[] } }>(
        who,
        'query { queue(resourceType: "host") { ... on Queue { entries { anonymous blockerReason blockerMessage } } } }',
      )
    ).queue.entries;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
    for (const who of ['alice', 'bob', 'admin'] as const) {
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
              bindings: [
                { name: 'h1', address: '10.0.0.1', port: 22 },
                { name: 'h2', address: '10.0.0.2', port: 22 },
              ],
            },
          ],
        },
      },
    );
    await db.prisma.authorization.create({
      data: {
        blueprintId: created.createBlueprint.blueprint.databaseId,
        principalId: principals.alice,
        blueprintState: 'AUTHORIZED',
      },
    });
    await call(
      'admin',
      'mutation ($p: ID!) { setQuota(principalId: $p, resourceType: "host", maxLeases: 1) { __typename } }',
      { p: gid('Principal', principals.alice) },
    );
  });
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it("a quota-blocked lease of another owner says why it waits, without its owner's quota", async () => {
    for (let i = 0; i < 2; i++) {
      await call('alice', 'mutation { requestLease(input: { resourceType: "host" }) { __typename } }');
    }
    // The second waits for alice's quota, though there is a free host.
    const own = await waitFor(async () => {
      const entries = await queue('alice');
      return entries.length === 1 && entries[0]!.blockerReason === 'quota' ? entries[0]! : null;
    });
    expect(own).toEqual({
      anonymous: false,
      blockerReason: 'quota',
      blockerMessage: 'at its quota of 1 live leases of this type',
    });
    expect(await queue('admin')).toEqual([own]);
    expect(await queue('bob')).toEqual([
      {
        anonymous: true,
        blockerReason: 'quota',
        blockerMessage: 'its owner is at its quota of live leases of this type',
      },
    ]);
  });
});

it('no message of a blocker stripped of its details says "undefined" (or fails)', () => {
  for (const reason of [
    'waiting-for-resource-activation',
    'waiting-for-reclaim',
    'no-capacity',
    'draining',
    'slot-lock',
    'queued-behind',
    'quota',
    'reserved',
    'gang-waiting',
    'gang-busy',
  ]) {
    expect(blockerMessage({ reason })).not.toMatch(/undefined|null|NaN/);
  }
});
