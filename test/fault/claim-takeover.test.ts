// kill -9 a server process while its worker holds claims: another process takes them over within
// seconds (the dead process's lock is gone), not after the claim TTL, which stays long so that a
// slow job of a live process is never taken from it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/database.js';
import { graphqlRequest } from '../support/http.js';
import { startServerProcess, type ServerProcess } from '../support/process.js';
import { ReferenceProvisioner } from '../support/reference-provisioner.js';
import { waitFor } from '../support/wait.js';

const ROUNDS = 4;
const LEASES = 4;

describePostgres('kill -9 a server process holding claims', () => {
  let db: TestDatabase;
  let provisioner: ReferenceProvisioner;
  const processes: ServerProcess[] = [];
  beforeAll(async () => {
    db = await createTestDatabase('postgresql');
    provisioner = await new ReferenceProvisioner().start();
    // B lives through all rounds; each round kills a new A.
    processes.push(await startServerProcess(env()));
  });
  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await provisioner?.close();
    await db?.dispose();
  });

  // Every process has the default claim TTL (60 s): only the process lock can explain a takeover.
  const env = () => ({ DATABASE_URL: db.url!, LOG_LEVEL: 'warn', WORKER_CONCURRENCY: String(LEASES) });
  const leaseIds = (leases: { id: string }[]) =>
    leases.map((l) => Number(Buffer.from(l.id, 'base64').toString().split(':')[1]));

  const createBlueprint = async (url: string) => {
    const created = await graphqlRequest(
      url,
      `mutation ($config: JSON!) { createBlueprint(input: { name: "cloud", implementation: "external", config: $config }) { __typename } }`,
      { config: { url: provisioner.url, callTimeoutMs: 120_000, pollIntervalMs: 20, leakSweepIntervalMs: 60_000 } },
    );
    expect(created.body.errors).toBeUndefined();
  };

  it.each(Array.from({ length: ROUNDS }, (_, i) => i))(
    'round %i: leases whose jobs the dead process held expire on time',
    async (round) => {
      const a = await startServerProcess(env());
      processes.push(a);
      const url = `${a.url}/graphql`;
      if (round === 0) await createBlueprint(url);
      // The provisioner does not answer: the jobs of these leases stay in its call, holding their claims.
      provisioner.hang.add('allocate');
      // A's claims name its process (its pid is part of the worker id).
      const heldByA = () => db.prisma.job.count({ where: { lockedBy: { contains: `:${a.child.pid}:` } } });
      // B is held still until A has claimed: on a busy machine B, long warm, can claim every job of
      // the request before A's worker does, and the round would have nothing of A's to take over.
      const b = processes[0]!.child;
      b.kill('SIGSTOP');
      let untilAt: number;
      let ids: number[];
      try {
        untilAt = Date.now() + 3_000;
        const requested = await graphqlRequest<{ requestLease: { leases: { id: string }[] } }>(
          url,
          `mutation ($count: Int!, $until: DateTime!) {
            requestLease(input: { resourceType: "machine", count: $count, until: $until }) { ... on RequestLeasePayload { leases { id } } } }`,
          { count: LEASES, until: new Date(untilAt).toISOString() },
        );
        expect(requested.body.errors).toBeUndefined();
        ids = leaseIds(requested.body.data!.requestLease.leases);
        await waitFor(async () => (await heldByA()) > 0);
      } finally {
        b.kill('SIGCONT');
      }

      expect(await a.stop('SIGKILL')).toBe('SIGKILL');
      const killedAt = Date.now();
      provisioner.hang.delete('allocate');
      expect(untilAt - killedAt).toBeLessThan(5_000);
      // Taken over within about a second, whatever the claim TTL (60 s here).
      await waitFor(async () => (await heldByA()) === 0, 5_000);
      const takenOverMs = Date.now() - killedAt;

      // Each lease ends (expired) within 1 s of its `until` plus 5 s.
      const ended = await waitFor(async () => {
        const logs = await db.prisma.log.findMany({ where: { leaseId: { in: ids }, type: 'lease-released' } });
        return logs.length === LEASES ? logs : null;
      }, 30_000);
      for (const log of ended) {
        expect(log.data).toEqual({ reason: 'expired' });
        expect(log.createdAt.getTime() - untilAt, `taken over after ${takenOverMs} ms`).toBeLessThanOrEqual(6_000);
      }
    },
    60_000,
  );
});
