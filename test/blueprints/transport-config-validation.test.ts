// A host-pool binding's transport is checked when its config is saved, by the rules the transport
// applies when it opens: an ssh user or address ssh would misread, and `local` on a server started
// without ALLOW_LOCAL_TRANSPORT, are refused by createBlueprint and updateBlueprint, changing nothing.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { BLUEPRINT_OUTCOME, type BlueprintOutcome } from './outcome.js';

const quiet = createLogger('error', () => {});

const ssh = (user: string) => ({ kind: 'ssh', user, credential: 'build-key' });
const hosts = (...bindings: Record<string, unknown>[]) => ({
  services: [{ name: 'build', bindings: bindings.map((b, i) => ({ name: `h${i}`, port: 22, ...b })) }],
});
const bindingPath = (j: number, ...rest: string[]) => ['config', 'services', '0', 'bindings', String(j), ...rest];

describeEachDatabase('transports in blueprint configs', (kind) => {
  let db: TestDatabase;
  /** Started as by default: ALLOW_LOCAL_TRANSPORT=false. */
  let strict: App;
  /** The same database, served by a process the operator let run local commands. */
  let permissive: App;
  /** The blueprint the update cases change (created by the first of them). */
  let sshHosts = '';

  const create = async (app: App, name: string, config: unknown) => {
    const { body } = await graphqlRequest<{ createBlueprint: BlueprintOutcome }>(
      app.graphqlUrl,
      `mutation ($input: CreateBlueprintInput!) { createBlueprint(input: $input) { ${BLUEPRINT_OUTCOME} } }`,
      { input: { name, implementation: 'host-pool', config } },
    );
    expect(body.errors).toBeUndefined();
    return body.data!.createBlueprint;
  };
  const update = async (app: App, id: string, config: unknown) => {
    const { body } = await graphqlRequest<{ updateBlueprint: BlueprintOutcome }>(
      app.graphqlUrl,
      `mutation ($id: ID!, $input: UpdateBlueprintInput!) { updateBlueprint(id: $id, input: $input) { ${BLUEPRINT_OUTCOME} } }`,
      { id, input: { config } },
    );
    expect(body.errors).toBeUndefined();
    return body.data!.updateBlueprint;
  };
  const snapshot = () =>
    db.prisma.blueprint.findMany({ orderBy: { id: 'asc' }, select: { id: true, name: true, config: true } });

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    const config = { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000 };
    strict = await serve(db, { ...config, allowLocalTransport: false }, quiet);
    permissive = await serve(db, { ...config, allowLocalTransport: true }, quiet);
    await db.prisma.credential.create({ data: { name: 'build-key', kind: 'ssh-key', secret: 'x' } });
  });
  afterAll(async () => {
    await permissive?.close();
    await strict?.close();
    await db?.dispose();
  });

  it('refuses ssh users and addresses that ssh would misread, each at its path, creating nothing', async () => {
    const before = await snapshot();
    const result = await create(
      strict,
      'bad-ssh',
      hosts(
        { address: '-oProxyCommand=touch /tmp/x', transport: ssh('deploy') },
        { address: 'build 1.example', transport: ssh('deploy') },
        { address: 'build-1.example;reboot', transport: ssh('deploy') },
        { address: '10.0.0.4', transport: ssh('-oProxyCommand=x') },
        { address: '10.0.0.5', transport: ssh('deploy user') },
        { address: '10.0.0.6', transport: ssh('$(id)') },
        { address: '-h', transport: ssh('-u') },
        { address: 'fe80::1%eth0', transport: ssh('deploy') },
      ),
    );
    expect(result.__typename).toBe('ValidationError');
    expect(result.problems).toEqual([
      {
        path: bindingPath(0, 'address'),
        message: 'services.0.bindings.0.address: "-oProxyCommand=touch /tmp/x" is not a valid host address',
      },
      {
        path: bindingPath(1, 'address'),
        message: 'services.0.bindings.1.address: "build 1.example" is not a valid host address',
      },
      {
        path: bindingPath(2, 'address'),
        message: 'services.0.bindings.2.address: "build-1.example;reboot" is not a valid host address',
      },
      {
        path: bindingPath(3, 'transport', 'user'),
        message: 'services.0.bindings.3.transport.user: "-oProxyCommand=x" is not a valid ssh user name',
      },
      {
        path: bindingPath(4, 'transport', 'user'),
        message: 'services.0.bindings.4.transport.user: "deploy user" is not a valid ssh user name',
      },
      {
        path: bindingPath(5, 'transport', 'user'),
        message: 'services.0.bindings.5.transport.user: "$(id)" is not a valid ssh user name',
      },
      {
        path: bindingPath(6, 'transport', 'user'),
        message: 'services.0.bindings.6.transport.user: "-u" is not a valid ssh user name',
      },
      { path: bindingPath(6, 'address'), message: 'services.0.bindings.6.address: "-h" is not a valid host address' },
    ]);
    expect(result.path).toEqual(bindingPath(0, 'address'));
    expect(await snapshot()).toEqual(before);
  });

  it('refuses the same on updateBlueprint, leaving the saved config as it was', async () => {
    const good = hosts({ address: 'build-1.example', transport: ssh('deploy') });
    const created = await create(strict, 'ssh-hosts', good);
    expect(created.__typename).toBe('BlueprintPayload');
    sshHosts = created.blueprint!.id;
    const before = await snapshot();
    const badAddress = await update(strict, sshHosts, hosts({ address: '-x', transport: ssh('deploy') }));
    expect(badAddress).toMatchObject({ __typename: 'ValidationError', path: bindingPath(0, 'address') });
    const badUser = await update(strict, sshHosts, hosts({ address: '10.0.0.1', transport: ssh('a;b') }));
    expect(badUser).toMatchObject({ __typename: 'ValidationError', path: bindingPath(0, 'transport', 'user') });
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a local transport where ALLOW_LOCAL_TRANSPORT is off, on create and update, and accepts it where it is on', async () => {
    const local = hosts({ address: '127.0.0.1', transport: { kind: 'local' } });
    const before = await snapshot();

    const refused = await create(strict, 'local-hosts', local);
    expect(refused).toMatchObject({ __typename: 'ValidationError', path: bindingPath(0, 'transport', 'kind') });
    expect(refused.message).toMatch(/local transport is disabled/);
    expect(refused.message).toMatch(/ALLOW_LOCAL_TRANSPORT/);
    expect(await snapshot()).toEqual(before);

    const updated = await update(strict, sshHosts, local);
    expect(updated).toMatchObject({ __typename: 'ValidationError', path: bindingPath(0, 'transport', 'kind') });
    expect(updated.message).toMatch(/ALLOW_LOCAL_TRANSPORT/);
    expect(await snapshot()).toEqual(before);

    expect((await create(permissive, 'local-hosts', local)).__typename).toBe('BlueprintPayload');
    expect((await update(permissive, sshHosts, local)).__typename).toBe('BlueprintPayload');
  });
});
