import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentFailure, TemporaryFailure } from '../../src/failures.js';
import { ProvisionerClient } from '../../src/blueprints/external/client.js';
import { shortfall } from '../../src/blueprints/external/matching.js';
import { requestIdOf, requestIdPrefix, resourceIdOf } from '../../src/blueprints/external/protocol.js';
import { startProvisioner, type ReferenceProvisioner } from '../support/reference-provisioner.js';

// The provisioner client against the reference provisioner over real HTTP: idempotent allocate,
// per-call deadlines, and which answers are temporary and which permanent.

const allocation = (requestId: string, attributes: Record<string, unknown> = {}) => ({
  requestId,
  resourceType: 'machine',
  attributes,
  parameters: { image: 'base' },
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('provisioner client', () => {
  let provisioner: ReferenceProvisioner;
  let client: ProvisionerClient;
  beforeEach(async () => {
    provisioner = await startProvisioner();
    client = new ProvisionerClient({ url: provisioner.url, timeoutMs: 300, maxRetryAfterMs: 5_000 });
  });
  afterEach(() => provisioner.close());

  it('allocates once per request id and reports the box as it boots', async () => {
    provisioner.bootDelayMs = 150;
    const first = await client.allocate(allocation('t:bp1:r1', { cpus: 4 }));
    expect(first).toMatchObject({ requestId: 't:bp1:r1', status: 'pending' });
    expect(first.attributes).toBeUndefined();
    const again = await client.allocate(allocation('t:bp1:r1', { cpus: 4 }));
    expect(again.id).toBe(first.id);
    expect(provisioner.liveBoxes()).toHaveLength(1);
    expect(provisioner.liveBoxes()[0]).toMatchObject({ requested: { cpus: 4 }, parameters: { image: 'base' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await client.get(first.id)).toMatchObject({ status: 'ready', attributes: { cpus: 4, memoryGb: 4 } });
  });

  it('a mystery box hides what it is until it opens, and ignores what was asked', async () => {
    provisioner.mysteryBox = true;
    provisioner.boxes = [{ cpus: 2 }];
    provisioner.bootDelayMs = 100;
    const box = await client.allocate(allocation('t:bp1:r2', { cpus: 8 }));
    expect(box.attributes).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await client.get(box.id))?.attributes).toEqual({ cpus: 2 });
  });

  it('gives up on a call that is not answered within its deadline, as a temporary failure', async () => {
    provisioner.hang.add('allocate');
    const started = Date.now();
    const error = await rejection(client.allocate(allocation('t:bp1:r3')));
    expect(error).toBeInstanceOf(TemporaryFailure);
    expect((error as Error).message).toBe('provisioner POST /allocate did not answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(2_000);
    // The provisioner accepted the work before it hung: the box exists.
    expect(provisioner.boxFor('t:bp1:r3')).toBeDefined();
  });

  it('over quota is temporary, with the provisioner hint capped; a refusal is permanent', async () => {
    provisioner.quota = 0;
    provisioner.overQuotaRetryAfterMs = 60_000;
    const overQuota = await rejection(client.allocate(allocation('t:bp1:r4')));
    expect(overQuota).toBeInstanceOf(TemporaryFailure);
    expect((overQuota as TemporaryFailure).message).toBe(
      'provisioner POST /allocate answered 429 over-quota: quota of 0 boxes reached',
    );
    expect((overQuota as TemporaryFailure).retryAfterMs).toBe(5_000);

    provisioner.failAllocate = 'unknown image "base"';
    const refused = await rejection(client.allocate(allocation('t:bp1:r5')));
    expect(refused).toBeInstanceOf(PermanentFailure);
    expect((refused as Error).message).toBe(
      'provisioner POST /allocate answered 422 invalid-request: unknown image "base"',
    );
  });

  it('sends the bearer token; a wrong one is a permanent failure', async () => {
    provisioner.token = 'sesame';
    expect(await rejection(client.list({}))).toBeInstanceOf(PermanentFailure);
    const authorized = new ProvisionerClient({
      url: provisioner.url,
      token: 'sesame',
      timeoutMs: 300,
      maxRetryAfterMs: 1_000,
    });
    expect(await authorized.list({})).toEqual([]);
  });

  it('delete is idempotent, get of a gone box is null, list filters by prefix and request id', async () => {
    const mine = await client.allocate(allocation('t:bp1:r6'));
    await client.allocate(allocation('t:bp2:r7'));
    expect((await client.list({ prefix: 't:bp1:' })).map((b) => b.requestId)).toEqual(['t:bp1:r6']);
    expect((await client.list({ requestId: 't:bp2:r7' })).map((b) => b.requestId)).toEqual(['t:bp2:r7']);
    await client.delete(mine.id);
    await client.delete(mine.id);
    expect(await client.get(mine.id)).toBeNull();
    expect(provisioner.count('delete', 204)).toBe(1);
    expect(provisioner.count('delete', 404)).toBe(1);
  });

  it('a provisioner that is down is a temporary failure', async () => {
    await provisioner.close();
    const error = await rejection(client.list({}));
    expect(error).toBeInstanceOf(TemporaryFailure);
    expect((error as Error).message).toMatch(/^provisioner GET \/resources failed: .*ECONNREFUSED/);
    provisioner = await startProvisioner();
  });
});

describe('provisioner client against a misbehaving server', () => {
  const answers: { status: number; body: string; headers?: Record<string, string> }[] = [];
  const server = createServer((_req, res) => {
    const answer = answers.shift() ?? { status: 500, body: '' };
    res.writeHead(answer.status, answer.headers ?? {}).end(answer.body);
  });
  let client: ProvisionerClient;
  beforeEach(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new ProvisionerClient({ url: `http://127.0.0.1:${port}/api`, timeoutMs: 500, maxRetryAfterMs: 10_000 });
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('a malformed answer is a permanent failure that says what is wrong', async () => {
    answers.push({ status: 200, body: '{"id":"x","requestId":"r","status":"booting"}' });
    const error = await rejection(client.get('x'));
    expect(error).toBeInstanceOf(PermanentFailure);
    expect((error as Error).message).toMatch(
      /^provisioner GET \/resources\/x answered with a malformed body: status: /,
    );
    answers.push({ status: 200, body: '<html>' });
    expect(((await rejection(client.get('x'))) as Error).message).toBe(
      'provisioner GET /resources/x answered 200 with a body that is not JSON',
    );
  });

  it('a 5xx without a JSON error is temporary and honours Retry-After; another request id is refused', async () => {
    answers.push({ status: 503, body: 'maintenance', headers: { 'retry-after': '2' } });
    const error = await rejection(client.list({}));
    expect(error).toBeInstanceOf(TemporaryFailure);
    expect(error).toMatchObject({
      message: 'provisioner GET /resources answered 503 maintenance',
      retryAfterMs: 2_000,
    });
    answers.push({ status: 200, body: JSON.stringify({ id: 'b', requestId: 'other', status: 'pending' }) });
    expect(await rejection(client.allocate(allocation('mine')))).toBeInstanceOf(PermanentFailure);
  });
});

describe('lease matching and request ids', () => {
  it('numbers are minimums, other values must be equal, an unreported attribute does not match', () => {
    expect(shortfall({ cpus: 8, os: 'linux', gpu: true }, { cpus: 4, os: 'linux', gpu: true })).toBeNull();
    expect(shortfall({ cpus: 2 }, { cpus: 4 })).toBe('cpus is 2, less than 4');
    expect(shortfall({ cpus: '8' }, { cpus: 4 })).toBe('cpus is "8", not a number of at least 4');
    expect(shortfall({ os: 'linux' }, { os: 'macos' })).toBe('os is "linux", not "macos"');
    expect(shortfall({}, { gpu: true })).toBe('gpu is not reported, not true');
  });

  it('request ids name the namespace, blueprint and resource, and only ours parse', () => {
    const prefix = requestIdPrefix('drydock', 3);
    expect(requestIdOf('drydock', 3, 17)).toBe('drydock:bp3:r17');
    expect(resourceIdOf('drydock:bp3:r17', prefix)).toBe(17);
    expect(resourceIdOf('drydock:bp31:r17', prefix)).toBeNull();
    expect(resourceIdOf('drydock:bp3:r17x', prefix)).toBeNull();
    expect(resourceIdOf('other:bp3:r17', prefix)).toBeNull();
  });
});
