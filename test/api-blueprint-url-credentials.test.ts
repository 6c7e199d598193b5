// A URL's user name and password in a stored blueprint config are secrets: validation refuses them
// now, but a row stored before that (or written to the database directly) still holds them, and no
// reader, admins included, may get them back, over GraphQL or from the command line.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serve, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from './support/database.js';
import { graphqlRequest } from './support/http.js';
import { principalWithToken } from './support/tokens.js';
import { runCli } from './cli/run-cli.js';

const quiet = createLogger('error', () => {});
const PASSWORD = 'hunter2-9c1e';
const MIRROR_TOKEN = 'ghp-mirror-5b7d';

describeEachDatabase('a stored blueprint config with credentials in a URL', (kind) => {
  let db: TestDatabase;
  let app: App;
  let admin: string;
  let blueprintId: number;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    app = await serve(db, { ...loadConfig({}), port: 0, shutdownTimeoutMs: 2_000, allowLocalAnonymous: false }, quiet);
    admin = (await principalWithToken(db, 'admin', { isAdmin: true })).token;
    // As a row stored before url credentials were refused: straight into the table.
    blueprintId = (
      await db.prisma.blueprint.create({
        data: {
          name: 'old-cloud',
          implementation: 'external',
          resourceType: 'machine',
          config: {
            url: `https://provisioner:${PASSWORD}@provisioner.internal:8443/v1`,
            token: 'write-only-token',
            parameters: {
              mirrors: [`see https://${MIRROR_TOKEN}@git.internal/repo.git`],
              spelled: `https:u:${PASSWORD}@h`,
            },
          },
        },
      })
    ).id;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await db?.dispose();
  });

  it('is returned with the credentials masked, to an admin, however it is read', async () => {
    const { body } = await graphqlRequest<Record<string, unknown>>(
      app.graphqlUrl,
      `query ($id: ID!) {
        blueprints { edges { node { config secretsSet } } }
        blueprint(id: $id) { config }
        node(id: $id) { ... on Blueprint { config } }
      }`,
      { id: Buffer.from(`Blueprint:${blueprintId}`).toString('base64') },
      { authorization: `Bearer ${admin}` },
    );
    expect(body.errors).toBeUndefined();
    const text = JSON.stringify(body.data);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(MIRROR_TOKEN);
    expect(text).not.toContain('provisioner:');
    const masked = {
      url: 'https://***@provisioner.internal:8443/v1',
      parameters: { mirrors: ['see https://***@git.internal/repo.git'], spelled: 'https://***@h/' },
    };
    expect(body.data).toEqual({
      blueprints: { edges: [{ node: { config: masked, secretsSet: ['token'] } }] },
      blueprint: { config: masked },
      node: { config: masked },
    });
  });

  it('is shown by the command line with the credentials masked', async () => {
    const env = { DRYDOCK_URL: app.url, DRYDOCK_TOKEN: admin };
    for (const args of [
      ['blueprint', 'show', String(blueprintId)],
      ['blueprint', 'show', String(blueprintId), '--json'],
      ['blueprint', 'list', '--json'],
    ]) {
      const shown = await runCli(args, { env });
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toContain('https://***@provisioner.internal:8443/v1');
      expect(shown.stdout).not.toContain(PASSWORD);
      expect(shown.stdout).not.toContain(MIRROR_TOKEN);
    }
  }, 60_000);
});
