// kill -9 a server on embedded PGlite while its worker holds a claim, and start the next one on the
// same data directory: the new process holds the directory alone, so the dead one's claims are
// taken over at start, not when they expire (the claim TTL is left long here to tell them apart).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { ReferenceProvisioner } from '../support/reference-provisioner.js';
import { waitFor } from '../support/wait.js';

const CLAIM_TTL_MS = 60_000;

describe('kill -9 a server on PGlite holding a claim, then start another on its data', () => {
  let dataDir: string;
  let provisioner: ReferenceProvisioner;
  const processes: ServerProcess[] = [];
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'drydock-pglite-takeover-'));
    provisioner = await new ReferenceProvisioner().start();
  });
  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await provisioner?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const env = () => ({ DATA_DIR: dataDir, LOG_LEVEL: 'warn', JOB_CLAIM_TTL_MS: String(CLAIM_TTL_MS) });

  it('the new process runs the lease the dead one held well before the claim TTL', async () => {
    const a = await startServerProcess(env());
    processes.push(a);
    const created = await graphqlRequest(
      `${a.url}/graphql`,
      `mutation ($config: JSON!) { createBlueprint(input: { name: "cloud", implementation: "external", config: $config }) { __typename } }`,
      { config: { url: provisioner.url, callTimeoutMs: 120_000, pollIntervalMs: 20, leakSweepIntervalMs: 60_000 } },
    );
    expect(created.body.errors).toBeUndefined();
    // The provisioner does not answer: the job allocating the lease stays in its call, claimed.
    provisioner.hang.add('allocate');
    const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
      `${a.url}/graphql`,
      'mutation { requestLease(input: { resourceType: "machine" }) { ... on RequestLeasePayload { leases { id } } } }',
    );
    expect(requested.body.errors).toBeUndefined();
    const leaseId = requested.body.data!.requestLease.leases[0]!.id;
    await waitFor(() => provisioner.calls.some((call) => call.kind === 'allocate' && call.status === 'hung'));

    expect(await a.stop('SIGKILL')).toBe('SIGKILL');
    provisioner.hang.delete('allocate');
    const b = await startServerProcess(env());
    processes.push(b);
    const startedAt = Date.now();
    const status = async () => {
      const { body } = await graphqlRequest<{ lease: { status: string } }>(
        `${b.url}/graphql`,
        'query ($id: ID!) { lease(id: $id) { status } }',
        { id: leaseId },
      );
      return body.data?.lease.status;
    };
    // A claim left to expire would hold the lease for the whole TTL after the kill.
    await waitFor(async () => (await status()) === 'ACTIVE', 10_000);
    expect(Date.now() - startedAt).toBeLessThan(CLAIM_TTL_MS / 6);
  }, 180_000);
});
