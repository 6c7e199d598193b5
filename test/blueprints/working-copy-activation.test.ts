import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentFailure } from '../../src/failures.js';
import type { Lease, LeaseStatus, Resource } from '../../src/generated/prisma/client.js';
import type { BlueprintRuntime, LeaseBreak, OwnedLeaseRequest } from '../../src/blueprints/implementation.js';
import { workingCopy } from '../../src/blueprints/working-copy.js';
import { localTransport } from '../../src/transports/local.js';
import { createGitFixtures, fileIn, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';

// Activation may run again after a crash at any point: it must find the host lease it already
// requested instead of requesting another, and skip the clones already made.

describe('working-copy activation', () => {
  let fixtures: GitFixtures;
  let app: GitOrigin;
  beforeAll(async () => {
    fixtures = await createGitFixtures();
    app = await fixtures.origin('app');
  });
  afterAll(() => fixtures.dispose());

  function world(verdict: LeaseBreak | null = null) {
    const held: Lease[] = [];
    const requests: OwnedLeaseRequest[] = [];
    const runtime: BlueprintRuntime = {
      log: async () => {},
      leases: {
        list: async () => [...held],
        async request(input) {
          requests.push(input);
          const lease = { id: 40 + held.length, status: 'PENDING', statusReason: null } as Lease;
          held.push(lease);
          return lease;
        },
        release: async () => {},
        whyBroken: async () => verdict,
      },
      commands: {
        transportOf: async () => ({ transport: localTransport() }),
        run: (_leaseId, spec) => localTransport().run(spec),
      },
      transports: { open: () => Promise.reject(new Error('unused')) },
      signal: new AbortController().signal,
    };
    const setHost = (status: LeaseStatus, statusReason: string | null = null) =>
      Object.assign(held[0]!, { status, statusReason });
    return { runtime, requests, setHost };
  }

  const root = () => join(fixtures.root, 'activation');
  const blueprint = (host: Record<string, unknown> = { attributes: { platform: 'linux' }, blueprintIds: [3] }) =>
    ({
      id: 7,
      config: workingCopy.configSchema.parse({ root: root(), host }),
    }) as Parameters<NonNullable<typeof workingCopy.activateResource>>[0];
  const resource = (id: number) =>
    ({ id, attributes: { repositories: { src: app.url }, root: root() } }) as unknown as Resource;

  it('requests one host lease, waits for it, clones once it is ACTIVE, and repeats safely', async () => {
    const { runtime, requests, setHost } = world();
    const activate = () => workingCopy.activateResource!(blueprint(), resource(1), runtime);
    expect(await activate()).toMatchObject({ status: 'wait' });
    expect(await activate()).toMatchObject({ status: 'wait' });
    expect(requests).toEqual([{ resourceType: 'host', attributes: { platform: 'linux' }, blueprintIds: [3] }]);

    setHost('ACTIVE');
    const path = join(root(), '1');
    const opened = { status: 'active', attributes: { path, hostLeaseId: 40 } };
    expect(await activate()).toEqual(opened);
    expect(await fileIn(join(path, 'src'), 'README')).toBe('v2\n');
    expect(await activate()).toEqual(opened);
    expect(requests).toHaveLength(1);
  });

  it('fails for good when the host lease ended, with the reason the allocator gave', async () => {
    const { runtime, setHost } = world();
    const activate = () => workingCopy.activateResource!(blueprint(), resource(2), runtime);
    await activate();
    setHost('BROKEN', 'no-authorizations');
    const failure = await activate().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PermanentFailure);
    expect((failure as Error).message).toBe('host lease 40 is BROKEN (no-authorizations): the copy has no host');
    expect(await fileIn(join(root(), '2', 'src'), 'README')).toBeNull();
  });

  /** The copy's failure once its host lease broke with `verdict`, the host lease being lease 40. */
  async function failureAfter(verdict: LeaseBreak, host?: Record<string, unknown>) {
    const { runtime, setHost } = world(verdict);
    const activate = () => workingCopy.activateResource!(blueprint(host), resource(3), runtime);
    await activate();
    setHost('BROKEN', verdict.reason);
    const failure = await activate().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PermanentFailure);
    return failure as PermanentFailure;
  }

  // The failure becomes the copy's lease's reason, read by its owner, who sees the working-copy
  // blueprint's config but not necessarily the host blueprints the host lease's verdict names.
  it('names only the host blueprints its config names when its principal is not authorized', async () => {
    const configured = await failureAfter({ reason: 'no-authorizations', blueprintIds: [3], message: '' });
    expect(configured.hopeless).toBe(true);
    expect(configured.message).toContain('which is not authorized on host blueprint(s) 3.');
    expect(configured.message).toContain('drydock authorization request --blueprint 3 --for-blueprint 7');

    const any = await failureAfter(
      { reason: 'no-authorizations', blueprintIds: [5], message: 'not authorized on any of blueprints 5' },
      { resourceType: 'build-host' },
    );
    expect(any.hopeless).toBe(true);
    expect(any.message).toContain('which is not authorized on any blueprint yielding "build-host".');
    expect(any.message).toContain('drydock authorization request --blueprint <host blueprint> --for-blueprint 7');
    expect(any.message).not.toMatch(/\b5\b/);
  });

  it("leaves the host blueprints an implementation judged out of the copy's reason, pointing to the host lease's log", async () => {
    const failure = await failureAfter({
      reason: 'cannot-ever-allocate',
      blueprintIds: [5],
      message: 'no blueprint can ever satisfy this lease: blueprint 5 "lab hosts": no binding has platform "linux"',
    });
    expect(failure.hopeless).toBe(true);
    expect(failure.message).toBe(
      'host lease 40 is BROKEN (cannot-ever-allocate): no host blueprint it may lease can ever satisfy the host lease ' +
        '(an administrator reads why in its log: drydock log --lease 40): the copy has no host',
    );
  });
});
