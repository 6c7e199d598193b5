import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { describePostgres } from '../support/database.js';
import { createHarness, unwrap, waitForLease, type Harness } from '../support/allocator-harness.js';
import { createGitFixtures, fileIn, git, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';
import {
  createWorkingCopyStack,
  waitForResource,
  waitForResourceOf,
  type WorkingCopyStack,
} from './working-copy-stack.js';

// The working-copy blueprint through the allocator: leases on copies of real repositories made
// by the test, cloned on this machine through a host pool's local transport.

describePostgres('working-copy blueprint', () => {
  let h: Harness;
  let fixtures: GitFixtures;
  let app: GitOrigin;
  let lib: GitOrigin;
  let stack: WorkingCopyStack;
  let stopWorker: () => Promise<void>;

  beforeAll(async () => {
    h = await createHarness('postgresql', { transports: { allowLocal: true } });
    fixtures = await createGitFixtures();
    app = await fixtures.origin('app');
    lib = await fixtures.origin('lib');
  });
  afterAll(async () => {
    await h.dispose();
    await fixtures.dispose();
  });
  beforeEach(async () => {
    await h.reset();
    stopWorker = h.services.worker.start({ concurrency: 4 }).stop;
    stack = await createWorkingCopyStack(h, fixtures.root, { resourceLimit: 2 });
  });
  afterEach(() => stopWorker());

  const request = (repositories: Record<string, Record<string, unknown>>, strict?: boolean) =>
    h.services.leases.request(h.system, {
      resourceType: 'working-copy',
      attributes: { repositories, ...(strict === undefined ? {} : { strict }) },
    });

  /** An ACTIVE lease on a copy, and where its "src" is on disk. */
  async function leaseCopy(repositories: Record<string, Record<string, unknown>>, strict?: boolean) {
    const lease = await waitForLease(h, unwrap(await request(repositories, strict)).id, ['ACTIVE'], 30_000);
    const resource = await h.db.prisma.resource.findUniqueOrThrow({ where: { id: lease.resourceId! } });
    const path = join(stack.root, String(resource.id));
    return { lease, resource, path, src: join(path, 'src') };
  }

  async function release(leaseId: number) {
    unwrap(await h.services.leases.release(h.system, leaseId));
    await waitForLease(h, leaseId, ['DESTROYED']);
  }

  it('builds a copy on a host lease of its own and checks out a commit', async () => {
    const { lease, resource, path, src } = await leaseCopy({
      src: { url: app.url, commit: app.commits.first },
      'vendor/lib': { url: lib.url },
    });
    expect(await git(src, 'rev-parse', 'HEAD')).toBe(app.commits.first);
    expect(await fileIn(src, 'README')).toBe('v1\n');
    expect(await fileIn(join(path, 'vendor/lib'), 'README')).toBe('v2\n');

    const [hostLease] = await h.db.prisma.lease.findMany({ where: { ownerResourceId: resource.id } });
    expect(hostLease).toMatchObject({ status: 'ACTIVE', resourceType: 'host', allowedBlueprintIds: [stack.hosts.id] });
    expect(resource).toMatchObject({
      status: 'ACTIVE',
      type: 'working-copy',
      attributes: {
        repositories: { src: app.url, 'vendor/lib': lib.url },
        root: stack.root,
        path,
        hostLeaseId: hostLease!.id,
      },
    });
    expect(unwrap(await h.services.leases.interfaces(h.system, lease.id))).toMatchObject({
      workingCopy: {
        path,
        hostLeaseId: hostLease!.id,
        repositories: {
          src: { url: app.url, path: src },
          'vendor/lib': { url: lib.url, path: join(path, 'vendor/lib') },
        },
      },
    });
    const slotLocks = await h.db.prisma.slotLock.findMany({ where: { ownerLeaseId: lease.id } });
    expect(slotLocks.map((l) => l.key)).toEqual([`working-copy.lease(${resource.id})`]);
    const progress = await h.db.prisma.log.findMany({ where: { leaseId: lease.id, type: 'lease-setup-progress' } });
    expect(progress.map((l) => (l.data as { message: string }).message)).toContain(`"src" is ready`);
  });

  it('runs a command on a lease in the copy, through its host lease', async () => {
    const { lease, path, src } = await leaseCopy({ src: { url: app.url, commit: app.commits.first } });
    const run = async (argv: string[]) => {
      const stream = unwrap(await h.services.leaseCommands.start(h.system, { leaseId: lease.id, argv }));
      let stdout = '';
      let exitCode: number | null = null;
      for await (const event of stream) {
        if (event.kind === 'output' && event.stream === 'stdout') stdout += event.text;
        if (event.kind === 'exit') exitCode = event.exitCode;
      }
      return { stdout: stdout.trim(), exitCode };
    };
    expect(await run(['pwd'])).toEqual({ stdout: path, exitCode: 0 });
    expect(await run(['git', '-C', 'src', 'rev-parse', 'HEAD'])).toEqual({ stdout: app.commits.first, exitCode: 0 });
    expect(await git(src, 'status', '--porcelain')).toBe('');
  });

  it('checks out a branch, then a ref no branch contains, on the same copy', async () => {
    const first = await leaseCopy({ src: { url: app.url, branch: 'feature' } });
    expect(await git(first.src, 'symbolic-ref', 'HEAD')).toBe('refs/heads/feature');
    expect(await git(first.src, 'rev-parse', 'HEAD')).toBe(app.commits.feature);
    expect(await fileIn(first.src, 'feature.txt')).toBe('feature\n');
    await release(first.lease.id);

    const second = await leaseCopy({ src: { url: app.url, ref: 'refs/changes/1/1' } });
    expect(second.resource.id).toBe(first.resource.id);
    expect(await git(second.src, 'rev-parse', 'HEAD')).toBe(app.commits.change);
    expect(await fileIn(second.src, 'change.txt')).toBe('change 1\n');
    expect(await fileIn(second.src, 'feature.txt')).toBeNull();
  });

  it('squash-merges extra refs on top of the remote HEAD', async () => {
    const { src } = await leaseCopy({ src: { url: app.url, merges: ['refs/changes/2/1', 'refs/changes/3/1'] } });
    expect(await fileIn(src, 'README')).toBe('v2\n');
    expect(await fileIn(src, 'merge-a.txt')).toBe('a\n');
    expect(await fileIn(src, 'merge-b.txt')).toBe('b\n');
    expect(await fileIn(src, 'shared.txt')).toBe('base\nfrom change 3\n');
    expect(await git(src, 'rev-parse', 'HEAD~2')).toBe(app.commits.main);
  });

  it('serves a lease from a copy with the same repositories, unless strict refuses extra ones', async () => {
    const both = await leaseCopy({ src: { url: app.url }, 'vendor/lib': { url: lib.url } });
    await release(both.lease.id);
    const subset = await leaseCopy({ src: { url: app.url } });
    expect(subset.resource.id).toBe(both.resource.id);
    await release(subset.lease.id);
    const strict = await leaseCopy({ src: { url: app.url } }, true);
    expect(strict.resource.id).not.toBe(both.resource.id);
    expect(strict.resource.attributes).toMatchObject({ repositories: { src: app.url } });
    expect(await stat(join(strict.path, 'vendor')).catch(() => null)).toBeNull();
  });

  it('breaks the lease when the commit does not exist, naming the phase; the copy serves the next lease', async () => {
    const missing = '0123456789abcdef0123456789abcdef01234567';
    const lease = unwrap(await request({ src: { url: app.url, commit: missing } }));
    const ended = await waitForLease(h, lease.id, ['DESTROYED'], 30_000);
    expect(ended.statusReason).toBe('setup-failed');
    const broken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    expect((broken.data as { message: string }).message).toMatch(
      /^working copy checkout failed for directory "src": git checkout exited with \d+: .*0123456789abcdef/,
    );
    const failed = await h.db.prisma.log.findMany({ where: { leaseId: lease.id, type: 'lease-setup-progress' } });
    expect(failed.at(-1)!.data).toMatchObject({ phase: 'checkout', directory: 'src' });

    const next = await leaseCopy({ src: { url: app.url, commit: app.commits.main } });
    expect(next.resource.id).toBe(ended.resourceId);
    expect(await git(next.src, 'rev-parse', 'HEAD')).toBe(app.commits.main);
  });

  it('refuses a bad repository map when the lease is requested', async () => {
    for (const [directory, message] of [
      ['../escape', '".." is not allowed'],
      ['/etc', 'is an absolute path'],
      ['-rf', 'starts with "-"'],
    ] as const) {
      const result = await request({ [directory]: { url: app.url } });
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.error).toMatchObject({ kind: 'ValidationError', path: ['attributes', 'repositories', directory] });
      expect(result.error.message).toContain(message);
    }
    const badUrl = await request({ src: { url: '--upload-pack=touch /tmp/pwned' } });
    expect(badUrl.ok ? null : badUrl.error.message).toContain('the repository URL starts with "-"');
    expect(await h.db.prisma.lease.count()).toBe(0);
  });

  it('removes the directory and releases the host lease when the copy is destroyed', async () => {
    const { lease, resource, path } = await leaseCopy({ src: { url: app.url } });
    const hostLeaseId = (resource.attributes as { hostLeaseId: number }).hostLeaseId;
    expect((await stat(path)).isDirectory()).toBe(true);
    await release(lease.id);
    unwrap(await h.services.resources.release(h.system, resource.id));
    await waitForResource(h, resource.id, ['DESTROYED']);
    expect(await stat(path).catch(() => null)).toBeNull();
    expect(await stat(stack.root)).toBeTruthy();
    const hostLease = await waitForLease(h, hostLeaseId, ['DESTROYED']);
    expect(hostLease.releasedAt).not.toBeNull();
    const teardown = await h.db.prisma.log.findMany({
      where: { resourceId: resource.id, type: 'resource-setup-progress' },
    });
    expect(teardown.map((l) => (l.data as { message: string }).message)).toContain(`removing ${path}`);
  });

  it('breaks the copy, saying why, when its blueprint may not lease a host', async () => {
    const unauthorized = unwrap(
      await h.services.blueprints.create(h.system, {
        name: 'unauthorized copies',
        implementation: 'working-copy',
        config: { root: join(stack.root, 'unauthorized'), host: { blueprintIds: [stack.hosts.id] } },
      }),
    );
    const lease = unwrap(
      await h.services.leases.request(h.system, {
        resourceType: 'working-copy',
        attributes: { repositories: { src: { url: app.url } } },
        blueprintIds: [unauthorized.id],
      }),
    );
    const broken = await waitForResourceOf(h, unauthorized.id, ['BROKEN', 'DESTROYED']);
    const log = await h.db.prisma.log.findFirstOrThrow({ where: { resourceId: broken.id, type: 'resource-broken' } });
    expect((log.data as { message: string }).message).toMatch(
      /^host lease \d+ is (BROKEN|DESTROYED) \(no-authorizations\)/,
    );
    // Another copy would be refused the same way: the lease breaks at once, passing the reason on
    // with the command that fixes it, and no second copy is built.
    const ended = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(ended.statusReason).toBe('resource-broken');
    const leaseBroken = await h.db.prisma.log.findFirstOrThrow({ where: { leaseId: lease.id, type: 'lease-broken' } });
    const message = (leaseBroken.data as { message: string }).message;
    expect(message).toContain('(no-authorizations)');
    expect(message).toContain(`is not authorized on host blueprint(s) ${stack.hosts.id}`);
    expect(message).toContain(
      `drydock authorization request --blueprint ${stack.hosts.id} --for-blueprint ${unauthorized.id}`,
    );
    expect(message).toContain('requestBlueprintAuthorization(');
    expect(await h.db.prisma.resource.count({ where: { blueprintId: unauthorized.id } })).toBe(1);
  });

  it('refuses to release a host lease from under its copy', async () => {
    const { lease, resource } = await leaseCopy({ src: { url: app.url } });
    const hostLeaseId = (resource.attributes as { hostLeaseId: number }).hostLeaseId;
    const refused = await h.services.leases.release(h.system, hostLeaseId);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error.message).toBe(
      `lease ${hostLeaseId} is held by resource ${resource.id} for itself: release resource ${resource.id} instead`,
    );
    expect((await h.db.prisma.lease.findUniqueOrThrow({ where: { id: hostLeaseId } })).status).toBe('ACTIVE');
    await release(lease.id);
  });

  it('breaks the copy, and the lease on it, when its host is released first, and still removes it from disk', async () => {
    const { lease, resource, path } = await leaseCopy({ src: { url: app.url } });
    const hostLeaseId = (resource.attributes as { hostLeaseId: number }).hostLeaseId;
    expect((await stat(path)).isDirectory()).toBe(true);
    const host = await h.db.prisma.lease.findUniqueOrThrow({ where: { id: hostLeaseId } });
    unwrap(await h.services.resources.release(h.system, host.resourceId!));
    const ended = await waitForLease(h, lease.id, ['DESTROYED']);
    expect(ended.statusReason).toBe('resource-broken');
    await waitForResource(h, resource.id, ['DESTROYED']);
    expect(await stat(path).catch(() => null)).toBeNull();
    const logs = await h.db.prisma.log.findMany({ where: { resourceId: resource.id }, orderBy: { id: 'asc' } });
    const text = JSON.stringify(logs.map((l) => l.data));
    expect(text).toContain(`host lease ${hostLeaseId} is`);
    expect(text).toContain(`removing ${path}`);
  });
});
