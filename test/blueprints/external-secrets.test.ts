import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProvisionerClient } from '../../src/blueprints/external/client.js';
import { tokenOf, type ExternalConfig } from '../../src/blueprints/external/config.js';
import { PermanentFailure } from '../../src/failures.js';
import { describePostgres } from '../support/database.js';
import { createHarness, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { startProvisioner, type ReferenceProvisioner } from '../support/reference-provisioner.js';

// What the external blueprint must never let out: a variable of the server that is no provisioner
// token (tokenEnv), credentials in a url that would be refused on every call anyway, and its own
// token quoted back by a provisioner into logs that many more people read than can see it.

const SECRET = 'SUPERSECRET-4c1d';
const ENV_TOKEN = 'DRYDOCK_TOKEN_TEST_EXTERNAL_SECRETS';

/** A provisioner that refuses everything, quoting back what it was sent, the way a careless one does. */
class EchoingProvisioner {
  readonly requests: { method: string; path: string; authorization: string | undefined }[] = [];
  /** What the next answers say; `{auth}` is replaced by the Authorization header received. */
  status = 403;
  body = '{"error":{"code":"forbidden","message":"bad token: {auth}"}}';
  url = '';
  private readonly server: Server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const authorization = req.headers.authorization;
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', authorization });
    const body = this.body.replaceAll('{auth}', authorization ?? '(none)');
    res.writeHead(this.status, { 'content-type': 'application/json' }).end(body);
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

const allocation = { requestId: 't:bp1:r1', resourceType: 'machine', attributes: {}, parameters: {} };

describe('external provisioner client: credentials and what it logs', () => {
  let provisioner: EchoingProvisioner;
  beforeEach(async () => {
    provisioner = await new EchoingProvisioner().start();
  });
  afterEach(() => provisioner.close());

  const client = (url = provisioner.url, token: string | undefined = SECRET) =>
    new ProvisionerClient({ url, token, timeoutMs: 1_000, maxRetryAfterMs: 1_000 });

  it('a url with a user name or password is a permanent, hopeless failure that reaches no server', async () => {
    const error = await rejection(client(provisioner.url.replace('//', '//admin:hunter2@')).allocate(allocation));
    expect(error).toBeInstanceOf(PermanentFailure);
    expect((error as PermanentFailure).hopeless).toBe(true);
    expect(error.message).toMatch(/^provisioner POST \/allocate cannot be sent: .*credentials/);
    // fetch quotes the URL it refuses: its password must not reach the log with it.
    expect(error.message).not.toContain('hunter2');
    expect(provisioner.requests).toEqual([]);

    // So is a token fetch cannot put in a header (a value with a line break inside); fetch quotes it.
    const badHeader = await rejection(client(provisioner.url, `${SECRET}\nX-Other: 1`).allocate(allocation));
    expect(badHeader).toBeInstanceOf(PermanentFailure);
    expect(badHeader.message).toMatch(/^provisioner POST \/allocate cannot be sent: .*invalid header value/);
    expect(badHeader.message).not.toContain(SECRET);
    expect(provisioner.requests).toEqual([]);
  });

  it("hides its own token in a provisioner's refusal, JSON or not, and in a failed box's message", async () => {
    const error = await rejection(client().allocate(allocation));
    expect(error).toBeInstanceOf(PermanentFailure);
    expect(error.message).toBe('provisioner POST /allocate answered 403 forbidden: bad token: Bearer ***');
    expect(provisioner.requests[0]?.authorization).toBe(`Bearer ${SECRET}`);

    // Not JSON, and the token just before the cut at 200 characters: redacted before the cut.
    provisioner.status = 401;
    provisioner.body = `${'x'.repeat(185)} {auth} and more`;
    const plain = await rejection(client().list({}));
    expect(plain.message).toBe(`provisioner GET /resources answered 401 ${'x'.repeat(185)} Bearer *** and`);

    provisioner.status = 200;
    provisioner.body = '{"id":"b1","requestId":"r","status":"failed","message":"refused {auth}"}';
    expect((await client().get('b1'))?.message).toBe('refused Bearer ***');
  });
});

describePostgres('external blueprint: tokens, credentials and logs', () => {
  let h: Harness;
  let stopWorker: () => Promise<void>;
  let reference: ReferenceProvisioner;
  let echoing: EchoingProvisioner;
  beforeAll(async () => {
    h = await createHarness('postgresql');
  });
  afterAll(() => h.dispose());
  beforeEach(async () => {
    await h.reset();
    reference = await startProvisioner();
    echoing = await new EchoingProvisioner().start();
    stopWorker = h.services.worker.start({ concurrency: 2 }).stop;
  });
  afterEach(async () => {
    await stopWorker();
    await reference.close();
    await echoing.close();
    delete process.env[ENV_TOKEN];
  });

  const create = (config: Record<string, unknown>) =>
    h.services.blueprints.create(h.system, {
      name: 'cloud',
      implementation: 'external',
      config: { pollIntervalMs: 20, maxPollIntervalMs: 200, callTimeoutMs: 2_000, ...config },
    });
  const problems = async (config: Record<string, unknown>) => {
    const result = await create(config);
    if (result.ok) throw new Error(`blueprint ${result.value.id} was created with ${JSON.stringify(config)}`);
    expect(result.error.kind).toBe('ValidationError');
    return (result.error as { problems: { path: (string | number)[]; message: string }[] }).problems;
  };

  it(`tokenEnv may only name a variable starting with DRYDOCK_TOKEN_, and such a one is sent`, async () => {
    for (const name of ['DATABASE_URL', 'DRYDOCK_TOKEN', 'DRYDOCK_TOKEN_', 'drydock_token_x', 'DRYDOCK_TOKEN_A-B'])
      expect(await problems({ url: reference.url, tokenEnv: name })).toEqual([
        {
          path: ['config', 'tokenEnv'],
          message:
            'tokenEnv must name an environment variable whose name starts with DRYDOCK_TOKEN_, then letters, digits or underscores (e.g. DRYDOCK_TOKEN_PROVISIONER)',
        },
      ]);
    expect(await h.db.prisma.blueprint.count()).toBe(0);
    // A config that never went through the schema cannot read another variable either.
    process.env['EXTERNAL_SECRETS_TEST_OTHER'] = 'not a token';
    expect(tokenOf({ tokenEnv: 'EXTERNAL_SECRETS_TEST_OTHER' } as ExternalConfig)).toBeUndefined();
    delete process.env['EXTERNAL_SECRETS_TEST_OTHER'];

    process.env[ENV_TOKEN] = 'sesame';
    reference.token = 'sesame';
    unwrap(await create({ url: reference.url, tokenEnv: ENV_TOKEN }));
    const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'machine' }));
    await waitForLease(h, lease.id, ['ACTIVE']);
  });

  it('refuses a url with a user name or password, pointing at token and tokenEnv', async () => {
    for (const url of [echoing.url.replace('//', '//admin:secret@'), echoing.url.replace('//', '//admin@')])
      expect(await problems({ url })).toEqual([
        {
          path: ['config', 'url'],
          message: 'the provisioner url must not include a user name or password: put credentials in token or tokenEnv',
        },
      ]);
    expect(await h.db.prisma.blueprint.count()).toBe(0);
    expect(echoing.requests).toEqual([]);
  });

  for (const source of ['token', 'tokenEnv'] as const) {
    it(`a provisioner quoting the token (from ${source}) back is logged with it hidden`, async () => {
      process.env[ENV_TOKEN] = SECRET;
      unwrap(await create({ url: echoing.url, ...(source === 'token' ? { token: SECRET } : { tokenEnv: ENV_TOKEN }) }));
      const lease = unwrap(await h.services.leases.request(h.system, { resourceType: 'machine' }));
      await waitForLease(h, lease.id, ['DESTROYED']);
      expect(echoing.requests[0]?.authorization).toBe(`Bearer ${SECRET}`);
      const [resource] = await h.db.prisma.resource.findMany();
      const broken = await h.db.prisma.log.findMany({ where: { resourceId: resource!.id, type: 'resource-broken' } });
      expect(broken.map((l) => l.data)).toEqual([
        {
          message: 'provisioner POST /allocate answered 403 forbidden: bad token: Bearer ***',
          reason: 'activation-failed',
        },
      ]);
      const everything = JSON.stringify(
        [await h.db.prisma.log.findMany(), await h.db.prisma.lease.findMany(), await h.db.prisma.resource.findMany()],
        (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value),
      );
      expect(everything).not.toContain(SECRET);
    });
  }
});
