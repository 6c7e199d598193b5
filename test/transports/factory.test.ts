import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PermanentFailure } from '../../src/failures.js';
import { createTransportFactory } from '../../src/transports/factory.js';
import type { TransportConfig } from '../../src/transports/config.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/database.js';
import { generateKey } from './sshd.js';

describeEachDatabase('the transport factory', (kind) => {
  let db: TestDatabase;
  let dir: string;
  let privateKey: string;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    dir = await mkdtemp(join(tmpdir(), 'drydock-factory-test-'));
    privateKey = (await generateKey(dir, 'id')).privateKey;
    await db.prisma.credential.createMany({
      data: [
        { name: 'build-key', kind: 'ssh-key', secret: privateKey },
        { name: 'old-key', kind: 'ssh-key', secret: '', revokedAt: new Date() },
        { name: 'api-password', kind: 'password', secret: 'hunter2' },
      ],
    });
  });
  afterAll(async () => {
    await db.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const ssh = (credential: string, user = 'deploy'): TransportConfig => ({
    kind: 'ssh',
    user,
    credential,
    connectTimeoutSeconds: 5,
  });
  const open = (transport: TransportConfig, allowLocal = false) =>
    createTransportFactory({ db, allowLocal, stateDir: join(dir, 'state') }).open({
      address: '10.0.0.1',
      port: 22,
      transport,
    });

  it('refuses the local transport unless the operator enabled it', async () => {
    const refused = open({ kind: 'local' });
    await expect(refused).rejects.toBeInstanceOf(PermanentFailure);
    await expect(refused).rejects.toThrow(/local transport is disabled \(set ALLOW_LOCAL_TRANSPORT=true/);
    const local = await open({ kind: 'local' }, true);
    expect(local.kind).toBe('local');
    expect((await local.run({ argv: ['echo', 'here'] })).stdout).toBe('here\n');
  });

  it('opens ssh with the named credential, and describes it without the secret', async () => {
    const transport = await open(ssh('build-key'));
    expect(transport.kind).toBe('ssh');
    expect(transport.describe()).toEqual({ kind: 'ssh', address: '10.0.0.1', port: 22, user: 'deploy' });
    expect(JSON.stringify(transport.describe())).not.toContain(privateKey.slice(40, 80));
  });

  it('fails for good, saying why, when the credential is missing, revoked, of another kind, or the user is bad', async () => {
    const cases: [TransportConfig, RegExp][] = [
      [ssh('no-such-key'), /credential "no-such-key" does not exist/],
      [ssh('old-key'), /credential "old-key" has been revoked/],
      [ssh('api-password'), /credential "api-password" is a password, not an ssh key/],
      [ssh('build-key', '-oProxyCommand=touch'), /not a valid ssh user name/],
    ];
    for (const [transport, message] of cases) {
      const opened = open(transport, true);
      await expect(opened).rejects.toBeInstanceOf(PermanentFailure);
      await expect(opened).rejects.toThrow(message);
    }
  });
});
