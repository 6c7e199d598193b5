import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type App } from '../../src/app.js';
import { principalWithToken } from '../support/tokens.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { sshKeyProblem } from '../../src/services/credentials.js';
import { createTransportFactory } from '../../src/transports/factory.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { collect, wsClient } from '../support/ws.js';
import { generateKey, sshdPath, startSshd, type KeyPair, type Sshd } from './sshd.js';

// Stored credentials through the API: administrators write them, nobody reads the secret back,
// and an ssh binding that names one reaches a real host with it.

const quiet = createLogger('error', () => {});

let db: TestDatabase;
let app: App;
let dir: string;
const tokens = { admin: '', alice: '' };
const keys = {} as Record<'plain' | 'pem' | 'encrypted' | 'encryptedPem', KeyPair>;

async function call<T = Record<string, { __typename: string; message?: string }>>(
  who: keyof typeof tokens,
  query: string,
  variables: Record<string, unknown> = {},
) {
  const { body } = await graphqlRequest<T>(app.graphqlUrl, query, variables, {
    authorization: `Bearer ${tokens[who]}`,
  });
  return body;
}

const CREATE = `mutation ($name: String!, $secret: String!) {
  createCredential(input: { name: $name, kind: SSH_KEY, secret: $secret }) {
    __typename
    ... on CredentialPayload { credential { id databaseId name kind revokedAt } }
    ... on Error { message }
    ... on ValidationError { path }
  }
}`;

type Created = {
  createCredential: {
    __typename: string;
    message?: string;
    path?: string[];
    credential?: { id: string; databaseId: number; name: string; kind: string; revokedAt: string | null };
  };
};

const savedTmpdir = process.env['TMPDIR'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drydock-credentials-test-'));
  // The server keeps ssh's known_hosts under the temp dir by default: a private one per run, or a
  // later run's sshd on the same port with a new host key would be refused as an impostor.
  process.env['TMPDIR'] = dir;
  db = await createTestDatabase('pglite');
  app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
  for (const [name, isAdmin] of [
    ['admin', true],
    ['alice', false],
  ] as const) {
    tokens[name] = (await principalWithToken(db, name, { isAdmin })).token;
  }
  keys.plain = await generateKey(dir, 'plain');
  keys.pem = await generateKey(dir, 'pem', { pem: true });
  keys.encrypted = await generateKey(dir, 'encrypted', { passphrase: 'correct horse' });
  keys.encryptedPem = await generateKey(dir, 'encrypted-pem', { passphrase: 'correct horse', pem: true });
});
afterAll(async () => {
  await app.close();
  await db.dispose();
  if (savedTmpdir === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmpdir;
  await rm(dir, { recursive: true, force: true });
});

describe('ssh key checks', () => {
  it('accepts OpenSSH and PEM private keys, with Windows line endings too', () => {
    expect(sshKeyProblem(keys.plain.privateKey)).toBeNull();
    expect(sshKeyProblem(keys.pem.privateKey)).toBeNull();
    expect(sshKeyProblem(keys.plain.privateKey.replaceAll('\n', '\r\n'))).toBeNull();
  });

  it('refuses public keys, passphrase-protected keys and anything else, saying which', () => {
    expect(sshKeyProblem(keys.plain.publicKey)).toMatch(/public key/);
    expect(sshKeyProblem(keys.encrypted.privateKey)).toMatch(/passphrase/);
    expect(sshKeyProblem(keys.encryptedPem.privateKey)).toMatch(/passphrase/);
    expect(sshKeyProblem('hunter2')).toMatch(/not a private key/);
    const broken = keys.plain.privateKey.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect(sshKeyProblem(broken)).toMatch(/not a valid OpenSSH private key/);
  });
});

describe('credentials through the API', () => {
  it('lets an administrator store a key, and shows everything but the secret', async () => {
    const created = (await call<Created>('admin', CREATE, { name: 'build-hosts', secret: keys.plain.privateKey }))
      .data!;
    expect(created.createCredential).toMatchObject({
      __typename: 'CredentialPayload',
      credential: { name: 'build-hosts', kind: 'SSH_KEY', revokedAt: null },
    });
    const listed = await call<{ credentials: { name: string; createdBy: { name: string } }[] }>(
      'admin',
      '{ credentials { name createdBy { name } } }',
    );
    expect(listed.data?.credentials).toEqual([{ name: 'build-hosts', createdBy: { name: 'admin' } }]);
    // The schema has no field that could return it.
    const secret = await call('admin', '{ credentials { secret } }');
    expect(secret.errors?.[0]?.message).toMatch(/Cannot query field "secret"/);
    expect(JSON.stringify(await call('admin', '{ credentials { id name kind createdAt revokedAt } }'))).not.toContain(
      'PRIVATE KEY',
    );
  });

  it('refuses bad keys and bad names as ValidationErrors, and a taken name as a ConflictError', async () => {
    const bad = async (name: string, secret: string) =>
      (await call<Created>('admin', CREATE, { name, secret })).data!.createCredential;
    expect(await bad('pub', keys.plain.publicKey)).toMatchObject({ __typename: 'ValidationError', path: ['secret'] });
    expect(await bad('locked', keys.encrypted.privateKey)).toMatchObject({
      __typename: 'ValidationError',
      message: expect.stringMatching(/passphrase/),
    });
    expect(await bad('has space', keys.plain.privateKey)).toMatchObject({
      __typename: 'ValidationError',
      path: ['name'],
    });
    expect(await bad('build-hosts', keys.pem.privateKey)).toMatchObject({ __typename: 'ConflictError' });
  });

  it('keeps non-administrators out entirely', async () => {
    expect((await call<Created>('alice', CREATE, { name: 'mine', secret: keys.plain.privateKey })).data).toMatchObject({
      createCredential: { __typename: 'NotAuthorizedError' },
    });
    const listed = await call('alice', '{ credentials { name } }');
    expect(listed.errors?.[0]).toMatchObject({ extensions: { code: 'NotAuthorizedError' } });
    const [credential] = await db.prisma.credential.findMany({ where: { name: 'build-hosts' } });
    const id = Buffer.from(`Credential:${credential!.id}`).toString('base64');
    const viaNode = await call('alice', 'query ($id: ID!) { node(id: $id) { id } }', { id });
    expect(viaNode.data).toEqual({ node: null });
    const revoke = await call('alice', 'mutation ($id: ID!) { revokeCredential(id: $id) { __typename } }', { id });
    expect(revoke.data).toEqual({ revokeCredential: { __typename: 'NotAuthorizedError' } });
  });

  it('revokes: the secret is erased, transports refuse it, and the name can be stored again', async () => {
    const created = (await call<Created>('admin', CREATE, { name: 'rotating', secret: keys.plain.privateKey })).data!
      .createCredential.credential!;
    const revoked = await call<{ revokeCredential: { credential: { revokedAt: string | null } } }>(
      'admin',
      'mutation ($id: ID!) { revokeCredential(id: $id) { ... on CredentialPayload { credential { revokedAt } } } }',
      { id: created.id },
    );
    expect(revoked.data?.revokeCredential.credential.revokedAt).toBeTruthy();
    const row = await db.prisma.credential.findUniqueOrThrow({ where: { id: created.databaseId } });
    expect(row.secret).toBe('');
    const factory = createTransportFactory({ db, allowLocal: false, stateDir: join(dir, 'state') });
    await expect(
      factory.open({
        address: '10.0.0.1',
        port: 22,
        transport: { kind: 'ssh', user: 'deploy', credential: 'rotating', connectTimeoutSeconds: 5 },
      }),
    ).rejects.toThrow(/credential "rotating" has been revoked/);

    const again = (await call<Created>('admin', CREATE, { name: 'rotating', secret: keys.pem.privateKey })).data!
      .createCredential;
    expect(again).toMatchObject({ __typename: 'CredentialPayload', credential: { name: 'rotating', revokedAt: null } });
    const missing = Buffer.from('Credential:99999').toString('base64');
    const notFound = await call('admin', 'mutation ($id: ID!) { revokeCredential(id: $id) { __typename } }', {
      id: missing,
    });
    expect(notFound.data).toEqual({ revokeCredential: { __typename: 'NotFoundError' } });
  });
});

const sshdLabel = sshdPath
  ? 'a stored credential on a real host'
  : 'a stored credential on a real host [skipped: no sshd; apt-get install openssh-server]';

describe.skipIf(!sshdPath)(sshdLabel, () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a command over ssh through a lease whose binding names the credential', async () => {
    const created = await call<Created>('admin', CREATE, { name: 'sshd-key', secret: sshd.client.privateKey });
    expect(created.data?.createCredential.__typename).toBe('CredentialPayload');
    const blueprint = await call<{ createBlueprint: { __typename: string } }>(
      'admin',
      'mutation ($config: JSON!) { createBlueprint(input: { name: "ssh-hosts", implementation: "host-pool", config: $config }) { __typename } }',
      {
        config: {
          services: [
            {
              name: 'ssh',
              bindings: [
                {
                  name: 'loopback',
                  address: '127.0.0.1',
                  port: sshd.port,
                  attributes: { via: 'ssh' },
                  transport: { kind: 'ssh', user: sshd.user, credential: 'sshd-key' },
                },
              ],
            },
          ],
        },
      },
    );
    expect(blueprint.data?.createBlueprint.__typename).toBe('BlueprintPayload');
    const requested = await call<{ requestLease: { leases: { id: string }[] } }>(
      'admin',
      'mutation { requestLease(input: { resourceType: "host", attributes: { via: "ssh" } }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    const leaseId = requested.data!.requestLease.leases[0]!.id;
    let interfaces: unknown;
    for (let i = 0; i < 100 && interfaces === undefined; i++) {
      const { data } = await call<{ lease: { status: string; interfaces: unknown } }>(
        'admin',
        'query ($id: ID!) { lease(id: $id) { status interfaces } }',
        { id: leaseId },
      );
      if (data?.lease.status === 'ACTIVE') interfaces = data.lease.interfaces;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(interfaces).toMatchObject({
      ssh: { host: '127.0.0.1', port: sshd.port },
      transport: { kind: 'ssh', address: '127.0.0.1', port: sshd.port, user: sshd.user },
    });

    const client = wsClient(app.graphqlUrl, { authorization: `Bearer ${tokens.admin}` });
    try {
      const events = await collect<{ runLeaseCommand: { __typename: string; text?: string; exitCode?: number } }>(
        client,
        {
          query: `subscription ($id: ID!) { runLeaseCommand(leaseId: $id, argv: ["sh", "-c", "echo \\"over ssh: $1\\"; exit 4", "sh", "it's here"]) {
            __typename ... on LeaseCommandOutput { text } ... on LeaseCommandExit { exitCode } ... on Error { message } } }`,
          variables: { id: leaseId },
        },
      ).done;
      const output = events.map((e) => e.runLeaseCommand.text ?? '').join('');
      expect(output).toBe("over ssh: it's here\n");
      expect(events.at(-1)?.runLeaseCommand).toEqual({ __typename: 'LeaseCommandExit', exitCode: 4 });
    } finally {
      await client.dispose();
    }
  });
});
