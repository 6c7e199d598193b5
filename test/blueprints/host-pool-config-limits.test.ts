// Every string of a host-pool config has a length limit, and every problem in one is a
// ValidationError whose message names the field and what it must be; nothing is stored. A config
// stored before the limits, with a string far past them, is still returned promptly.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { BLUEPRINT_OUTCOME, type BlueprintOutcome } from './outcome.js';
import { principalWithToken } from '../support/tokens.js';

const quiet = createLogger('error', () => {});

const text = (length: number) => 'x'.repeat(length);
const CREDENTIAL = `k${text(99)}`;
const config = (sizes: {
  name: number;
  address: number;
  key: number;
  value: number;
  user: number;
  credential: number;
}) => ({
  services: [
    {
      name: text(sizes.name),
      bindings: [
        {
          name: text(sizes.name),
          address: text(sizes.address),
          port: 22,
          attributes: { [text(sizes.key)]: text(sizes.value) },
          transport: { kind: 'ssh', user: text(sizes.user), credential: CREDENTIAL.padEnd(sizes.credential, 'k') },
        },
      ],
    },
  ],
});
const atLimits = { name: 200, address: 253, key: 200, value: 1_024, user: 256, credential: 100 };
const pastLimits = { name: 201, address: 254, key: 201, value: 1_025, user: 257, credential: 101 };
const binding = ['config', 'services', '0', 'bindings', '0'];

describeEachDatabase('host-pool config limits', (kind) => {
  let db: TestDatabase;
  let app: App;
  let admin: string;
  const mutate = async (query: string, variables: Record<string, unknown>) => {
    const { body } = await graphqlRequest<{ result: BlueprintOutcome }>(app.graphqlUrl, query, variables, {
      authorization: `Bearer ${admin}`,
    });
    expect(body.errors).toBeUndefined();
    return body.data!.result;
  };
  const create = (input: Record<string, unknown>) =>
    mutate(
      `mutation ($input: CreateBlueprintInput!) { result: createBlueprint(input: $input) { ${BLUEPRINT_OUTCOME} } }`,
      {
        input,
      },
    );
  const update = (id: string, input: Record<string, unknown>) =>
    mutate(
      `mutation ($id: ID!, $input: UpdateBlueprintInput!) {
        result: updateBlueprint(id: $id, input: $input) { ${BLUEPRINT_OUTCOME} } }`,
      { id, input },
    );
  const rows = () => db.prisma.blueprint.findMany({ orderBy: { id: 'asc' } });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
    admin = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
    await db.prisma.credential.create({ data: { name: CREDENTIAL, kind: 'ssh-private-key', secret: 'x' } });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('refuses every string past its limit, naming each field and its limit, and stores nothing', async () => {
    const before = await rows();
    const result = await create({ name: 'long', implementation: 'host-pool', config: config(pastLimits) });
    expect(result.__typename).toBe('ValidationError');
    expect(result.problems).toEqual([
      {
        path: ['config', 'services', '0', 'name'],
        message: "services.0.name must have at most 200 characters (the service's name)",
      },
      {
        path: [...binding, 'name'],
        message:
          "services.0.bindings.0.name must have at most 200 characters (the binding's name, unique within its service)",
      },
      {
        path: [...binding, 'address'],
        message: "services.0.bindings.0.address must have at most 253 characters (the host's name or IP address)",
      },
      {
        path: [...binding, 'attributes', text(201)],
        message: 'services.0.bindings.0.attributes has an attribute name longer than 200 characters',
      },
      {
        path: [...binding, 'transport', 'user'],
        message: 'services.0.bindings.0.transport.user must have at most 256 characters (the user ssh logs in as)',
      },
      {
        path: [...binding, 'transport', 'credential'],
        message:
          'services.0.bindings.0.transport.credential must have at most 100 characters (the name of a stored ssh key)',
      },
    ]);
    expect(result.message).toBe(`${result.problems![0]!.message} (and 5 more problems)`);
    const longValue = await create({
      name: 'long',
      implementation: 'host-pool',
      config: config({ ...atLimits, value: pastLimits.value }),
    });
    expect(longValue.problems).toEqual([
      {
        path: [...binding, 'attributes', text(200)],
        message: `services.0.bindings.0.attributes.${text(200)} must have at most 1024 characters`,
      },
    ]);
    expect(await rows()).toEqual(before);
  });

  it('accepts every string at its limit', async () => {
    const result = await create({ name: 'at-limits', implementation: 'host-pool', config: config(atLimits) });
    expect(result.__typename).toBe('BlueprintPayload');
  });

  it('words wrong types by the field and what it must be, not "Invalid input"', async () => {
    const before = await rows();
    const result = await create({
      name: 'types',
      implementation: 'host-pool',
      config: {
        services: [
          {
            name: '',
            bindings: [
              { name: 'a', address: 'h', port: 22, attributes: { platform: null } },
              { name: 'b', address: 'h', port: 22, transport: { kind: 'telnet' } },
              { name: 'c', port: 22, transport: 'ssh' },
            ],
          },
          { name: 's', bindings: [] },
        ],
      },
    });
    expect(result.problems).toEqual([
      { path: ['config', 'services', '0', 'name'], message: "services.0.name must not be empty (the service's name)" },
      {
        path: ['config', 'services', '0', 'bindings', '0', 'attributes', 'platform'],
        message: 'services.0.bindings.0.attributes.platform must be a string, number or boolean',
      },
      {
        path: ['config', 'services', '0', 'bindings', '1', 'transport', 'kind'],
        message: 'services.0.bindings.1.transport.kind must be "ssh" or "local"',
      },
      {
        path: ['config', 'services', '0', 'bindings', '2', 'address'],
        message: "services.0.bindings.2.address is required (the host's name or IP address)",
      },
      {
        path: ['config', 'services', '0', 'bindings', '2', 'transport'],
        message: 'services.0.bindings.2.transport must be an object with a "kind" of "ssh" or "local"',
      },
      { path: ['config', 'services', '1', 'bindings'], message: 'services.1.bindings must list at least one binding' },
    ]);
    expect(await rows()).toEqual(before);
  });

  it('refuses an edit to a string past its limit, leaving the blueprint as it was', async () => {
    const created = await create({
      name: 'edited',
      implementation: 'host-pool',
      config: { services: [{ name: 's', bindings: [{ name: 'h', address: '10.0.0.1', port: 22 }] }] },
    });
    const before = await rows();
    const result = await update(created.blueprint!.id, {
      name: 'renamed',
      config: { services: [{ name: 's', bindings: [{ name: 'h', address: text(30_000), port: 22 }] }] },
    });
    expect(result).toMatchObject({
      __typename: 'ValidationError',
      path: [...binding, 'address'],
      message: "services.0.bindings.0.address must have at most 253 characters (the host's name or IP address)",
    });
    expect(await rows()).toEqual(before);
  });

  it('returns a config stored before the limits, with a long string in it, promptly', async () => {
    // As a row written before the limits: straight into the table.
    const long = `x://${text(100_000)}`;
    await db.prisma.blueprint.create({
      data: {
        name: 'stored-long',
        implementation: 'host-pool',
        resourceType: 'host',
        config: { services: [{ name: 's', bindings: [{ name: 'h', address: long, port: 22 }] }] },
      },
    });
    const started = performance.now();
    const { body } = await graphqlRequest<{ blueprints: { edges: { node: { name: string; config: unknown } }[] } }>(
      app.graphqlUrl,
      '{ blueprints { edges { node { name config } } } }',
      {},
      { authorization: `Bearer ${admin}` },
    );
    const elapsed = performance.now() - started;
    expect(body.errors).toBeUndefined();
    const stored = body.data!.blueprints.edges.find((e) => e.node.name === 'stored-long')!.node;
    expect(stored.config).toEqual({ services: [{ name: 's', bindings: [{ name: 'h', address: long, port: 22 }] }] });
    // Masking it was quadratic in its length, far past this; linear, it leaves room for a loaded machine.
    expect(elapsed).toBeLessThan(5_000);
  }, 120_000);
});
