// Blueprint configs refuse typos and dangling names, listing every problem in one answer, and a
// lease no blueprint can serve says, per blueprint, what did not match.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { BLUEPRINT_OUTCOME, type BlueprintOutcome } from './outcome.js';

const quiet = createLogger('error', () => {});
const create = `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { ${BLUEPRINT_OUTCOME} } }`;
const binding = (extra: Record<string, unknown> = {}) => ({ name: 'h1', address: '10.0.0.1', port: 22, ...extra });

describeEachDatabase('blueprint config validation', (kind) => {
  let db: TestDatabase;
  let app: App;
  const createBlueprint = async (input: Record<string, unknown>) => {
    const { body } = await graphqlRequest<{ createBlueprint: BlueprintOutcome }>(app.graphqlUrl, create, { input });
    expect(body.errors).toBeUndefined();
    return body.data!.createBlueprint;
  };

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 }, quiet);
  });
  afterAll(async () => {
    await app.close();
    await db.dispose();
  });

  it('refuses unknown keys with their paths and lists every problem at once, creating nothing', async () => {
    const result = await createBlueprint({
      name: ' ',
      implementation: 'host-pool',
      config: {
        services: [{ name: 's', bindings: [binding({ atributes: { platform: 'linux' }, port: 70_000 })] }],
        extra: true,
      },
    });
    expect(result.__typename).toBe('ValidationError');
    const problems = result.problems!.map((p) => p.path.join('.'));
    expect(problems).toEqual(
      expect.arrayContaining([
        'name',
        'config.services.0.bindings.0.atributes',
        'config.services.0.bindings.0.port',
        'config.extra',
      ]),
    );
    expect(problems).toHaveLength(4);
    expect(result.problems!.find((p) => p.path.at(-1) === 'atributes')!.message).toBe('unknown key "atributes"');
    expect(result.message).toMatch(/and 3 more problems/);
    expect(await db.prisma.blueprint.count()).toBe(0);
  });

  it('refuses a credential name that does not exist, and accepts it once the credential does', async () => {
    const config = {
      services: [
        { name: 's', bindings: [binding({ transport: { kind: 'ssh', user: 'drydock', credential: 'deploy-key' } })] },
      ],
    };
    const refused = await createBlueprint({ name: 'ssh-hosts', implementation: 'host-pool', config });
    expect(refused.__typename).toBe('ValidationError');
    expect(refused.problems).toEqual([
      {
        path: ['config', 'services', '0', 'bindings', '0', 'transport', 'credential'],
        message: expect.stringMatching(/no credential named "deploy-key" exists/),
      },
    ]);
    await db.prisma.credential.create({ data: { name: 'deploy-key', kind: 'ssh-private-key', secret: 'x' } });
    expect((await createBlueprint({ name: 'ssh-hosts', implementation: 'host-pool', config })).__typename).toBe(
      'BlueprintPayload',
    );
  });

  it('refuses host blueprints that do not exist or yield another type', async () => {
    const hosts = await db.prisma.blueprint.findFirstOrThrow({ where: { name: 'ssh-hosts' } });
    const result = await createBlueprint({
      name: 'copies',
      implementation: 'working-copy',
      config: { root: '/var/drydock/copies', host: { resourceType: 'box', blueprintIds: [hosts.id, 999] } },
    });
    expect(result.problems).toEqual([
      { path: ['config', 'host', 'blueprintIds', '0'], message: `blueprint ${hosts.id} yields "host", not "box"` },
      { path: ['config', 'host', 'blueprintIds', '1'], message: 'blueprint 999 does not exist' },
    ]);
  });

  it('refuses a warm pool past the resource limit or for attributes no binding has, creating nothing', async () => {
    const config = { services: [{ name: 's', bindings: [binding({ attributes: { platform: 'linux' } })] }] };
    const before = await db.prisma.blueprint.count();
    const overLimit = await createBlueprint({
      name: 'warm',
      implementation: 'host-pool',
      config,
      resourceLimit: 1,
      minReady: 2,
    });
    expect(overLimit).toMatchObject({
      __typename: 'ValidationError',
      path: ['minReady'],
      message: 'minReady (2) is more than the resource limit (1) allows',
    });
    const unservable = await createBlueprint({
      name: 'warm',
      implementation: 'host-pool',
      config,
      minReady: 1,
      warmAttributes: { platform: 'windows' },
    });
    expect(unservable).toMatchObject({ __typename: 'ValidationError', path: ['warmAttributes', 'platform'] });
    expect(await db.prisma.blueprint.count()).toBe(before);
  });

  it('lists the valid implementations when the one asked for is unknown', async () => {
    const result = await createBlueprint({ name: 'x', implementation: 'host-poll', config: {} });
    expect(result.path).toEqual(['implementation']);
    expect(result.message).toBe(
      'unknown blueprint implementation "host-poll"; known: "host-pool", "working-copy", "external"',
    );
  });

  it('breaks a lease no blueprint can serve naming, per blueprint, the attribute that did not match', async () => {
    await createBlueprint({
      name: 'linux',
      implementation: 'host-pool',
      config: { services: [{ name: 's', bindings: [binding({ attributes: { platform: 'linux' } })] }] },
    });
    const { body } = await graphqlRequest<{ requestLease: { leases: { databaseId: number }[] } }>(
      app.graphqlUrl,
      `mutation { requestLease(input: { resourceType: "host", attributes: { platform: "windows" } }) {
        ... on RequestLeasePayload { leases { databaseId } } } }`,
    );
    const leaseId = body.data!.requestLease.leases[0]!.databaseId;
    // The allocator works in the background: wait for its verdict.
    const broken = await vi.waitFor(
      async () => db.prisma.log.findFirstOrThrow({ where: { leaseId, type: 'lease-broken' }, select: { data: true } }),
      { timeout: 30_000, interval: 25 },
    );
    const message = (broken.data as { message: string }).message;
    expect(message).toContain('blueprint');
    expect(message).toMatch(/"linux": attribute "platform": the lease wants "windows", enabled bindings have "linux"/);
    expect(message).toMatch(
      /"ssh-hosts": attribute "platform": the lease wants "windows", enabled bindings have \(none\)/,
    );
  });
});
