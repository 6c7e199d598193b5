import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentFailure } from '../../src/failures.js';
import type { BlueprintRuntime } from '../../src/blueprints/implementation.js';
import { workingCopyLeaseAttributes } from '../../src/blueprints/working-copy/attributes.js';
import { hostCommands } from '../../src/blueprints/working-copy/host-git.js';
import { cloneCopy, prepareCopy } from '../../src/blueprints/working-copy/setup.js';
import { localTransport } from '../../src/transports/local.js';
import { createGitFixtures, fileIn, git, type GitFixtures, type GitOrigin } from '../support/git-fixtures.js';

// The working copy's git sequences against real repositories, on this machine's local transport,
// without the allocator around them (working-copy.test.ts runs them through leases).

interface Logged {
  message: string;
  data: Record<string, unknown> | undefined;
}

function localRuntime(): { runtime: BlueprintRuntime; logs: Logged[] } {
  const logs: Logged[] = [];
  const transport = localTransport();
  const refuse = () => Promise.reject(new Error('not available in this test'));
  const runtime: BlueprintRuntime = {
    log: async (message, data) => void logs.push({ message, data }),
    leases: { list: async () => [], request: refuse, release: refuse, whyBroken: async () => null },
    commands: { transportOf: async () => ({ transport }), run: (_leaseId, spec) => transport.run(spec) },
    transports: { open: refuse },
    signal: new AbortController().signal,
  };
  return { runtime, logs };
}

describe('working-copy git sequences', () => {
  let fixtures: GitFixtures;
  let app: GitOrigin;
  let lib: GitOrigin;
  let copies = 0;
  beforeAll(async () => {
    fixtures = await createGitFixtures();
    app = await fixtures.origin('app');
    lib = await fixtures.origin('lib');
  });
  afterAll(() => fixtures.dispose());

  /** A fresh copy of app (in "src") and lib (in "vendor/lib"), cloned. */
  async function clonedCopy() {
    const { runtime, logs } = localRuntime();
    const host = hostCommands(runtime, 1, 60_000);
    const path = join(fixtures.root, 'copies', String(++copies));
    await cloneCopy(host, runtime, path, { src: app.url, 'vendor/lib': lib.url });
    const prepare = (repositories: Record<string, Record<string, unknown>>) =>
      prepareCopy(
        host,
        runtime,
        path,
        ['src', 'vendor/lib'],
        workingCopyLeaseAttributes.parse({
          repositories: Object.fromEntries(
            Object.entries(repositories).map(([dir, r]) => [dir, { url: dir === 'src' ? app.url : lib.url, ...r }]),
          ),
        }),
      );
    return { path, src: join(path, 'src'), logs, runtime, host, prepare };
  }

  it('clones every repository once, even when asked again after a crash', async () => {
    const copy = await clonedCopy();
    expect(await fileIn(copy.src, 'README')).toBe('v2\n');
    expect(await fileIn(join(copy.path, 'vendor/lib'), 'README')).toBe('v2\n');
    await writeFile(join(copy.src, 'marker'), 'still here');
    await cloneCopy(copy.host, copy.runtime, copy.path, { src: app.url, 'vendor/lib': lib.url });
    expect(await fileIn(copy.src, 'marker')).toBe('still here');
    expect(copy.logs.filter((l) => l.message.includes('already cloned'))).toHaveLength(2);
  });

  it('replaces what an interrupted clone left behind', async () => {
    const { runtime } = localRuntime();
    const path = join(fixtures.root, 'copies', 'interrupted');
    await mkdir(join(path, 'src', '.git'), { recursive: true });
    await writeFile(join(path, 'src', 'half'), '');
    await cloneCopy(hostCommands(runtime, 1, 60_000), runtime, path, { src: app.url });
    expect(await fileIn(join(path, 'src'), 'half')).toBeNull();
    expect(await git(join(path, 'src'), 'rev-parse', 'HEAD')).toBe(app.commits.main);
  });

  it('checks out the remote HEAD, a commit, a branch or a ref, and fetches what was pushed since', async () => {
    const copy = await clonedCopy();
    await copy.prepare({ src: { commit: app.commits.first } });
    expect(await git(copy.src, 'rev-parse', 'HEAD')).toBe(app.commits.first);
    expect(await fileIn(copy.src, 'README')).toBe('v1\n');

    await copy.prepare({ src: { branch: 'feature' } });
    expect(await git(copy.src, 'symbolic-ref', 'HEAD')).toBe('refs/heads/feature');
    expect(await fileIn(copy.src, 'feature.txt')).toBe('feature\n');

    await copy.prepare({ src: { ref: 'refs/changes/1/1' } });
    expect(await git(copy.src, 'rev-parse', 'HEAD')).toBe(app.commits.change);
    expect(await fileIn(copy.src, 'change.txt')).toBe('change 1\n');
    expect(await fileIn(copy.src, 'feature.txt')).toBeNull();

    const pushed = await app.push({ 'new.txt': 'pushed\n' });
    await copy.prepare({ src: {} });
    expect(await git(copy.src, 'rev-parse', 'HEAD')).toBe(pushed);
    expect(await fileIn(copy.src, 'new.txt')).toBe('pushed\n');
    expect(copy.logs.at(-1)).toEqual({ message: '"src" is ready', data: { directory: 'src', commit: pushed } });
  });

  it('squash-merges refs in order, one commit each, on top of the checkout', async () => {
    const copy = await clonedCopy();
    const base = await git(copy.src, 'rev-parse', 'refs/remotes/origin/main');
    await copy.prepare({ src: { branch: 'main', merges: ['refs/changes/2/1', 'refs/changes/3/1'] } });
    expect(await fileIn(copy.src, 'merge-a.txt')).toBe('a\n');
    expect(await fileIn(copy.src, 'merge-b.txt')).toBe('b\n');
    expect(await fileIn(copy.src, 'shared.txt')).toBe('base\nfrom change 3\n');
    expect(await git(copy.src, 'log', '--format=%s', `${base}..HEAD`)).toBe(
      'Squash-merge refs/changes/3/1\nSquash-merge refs/changes/2/1',
    );
    // Squashed: the merged refs' own commits are not in the history.
    expect(await git(copy.src, 'rev-list', '--count', `${base}..HEAD`)).toBe('2');
    expect(await git(copy.src, 'status', '--porcelain')).toBe('');
  });

  it('cleans what the last lease left: changes, untracked and ignored files, in every repository', async () => {
    const copy = await clonedCopy();
    const lib = join(copy.path, 'vendor/lib');
    await writeFile(join(copy.src, 'README'), 'edited\n');
    await writeFile(join(copy.src, 'build.log'), 'untracked\n');
    await writeFile(join(copy.src, '.git', 'info', 'exclude'), 'ignored.o\n');
    await writeFile(join(copy.src, 'ignored.o'), 'ignored\n');
    await writeFile(join(lib, 'stray'), 'not asked for, cleaned anyway\n');
    await copy.prepare({ src: {} });
    expect(await fileIn(copy.src, 'README')).toBe('v2\n');
    expect(await fileIn(copy.src, 'build.log')).toBeNull();
    expect(await fileIn(copy.src, 'ignored.o')).toBeNull();
    expect(await fileIn(lib, 'stray')).toBeNull();
  });

  it('fails a missing commit in the checkout phase, naming the directory, and logs the phase', async () => {
    const copy = await clonedCopy();
    const missing = '0123456789abcdef0123456789abcdef01234567';
    const failure = await copy.prepare({ src: { commit: missing } }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PermanentFailure);
    expect((failure as Error).message).toMatch(
      /^working copy checkout failed for directory "src": git checkout exited/,
    );
    expect(copy.logs.at(-1)!.data).toMatchObject({ phase: 'checkout', directory: 'src' });
  });

  it('fails a missing branch in the fetch phase and conflicting merges in the merge phase, then recovers', async () => {
    const copy = await clonedCopy();
    await expect(copy.prepare({ src: { branch: 'no-such-branch' } })).rejects.toThrow(
      /^working copy fetch failed for directory "src": git fetch exited with 128: .*no-such-branch/,
    );
    await expect(copy.prepare({ src: { merges: ['refs/changes/4/1', 'refs/changes/5/1'] } })).rejects.toThrow(
      /^working copy merge failed for directory "src": git merge exited/,
    );
    expect(copy.logs.at(-1)!.data).toMatchObject({ phase: 'merge', directory: 'src' });
    // The next lease gets a clean copy despite the conflict left in the index.
    await copy.prepare({ src: { commit: app.commits.first } });
    expect(await fileIn(copy.src, 'shared.txt')).toBe('base\n');
    expect(await git(copy.src, 'status', '--porcelain')).toBe('');
  });

  it('fails an unreachable repository in the clone phase', async () => {
    const { runtime, logs } = localRuntime();
    const path = join(fixtures.root, 'copies', 'bad-url');
    const missing = join(fixtures.root, 'no-such.git');
    await expect(cloneCopy(hostCommands(runtime, 1, 60_000), runtime, path, { src: missing })).rejects.toThrow(
      /^working copy clone failed for directory "src": git clone exited with 128/,
    );
    expect(logs.at(-1)!.data).toMatchObject({ phase: 'clone', directory: 'src', exitCode: 128 });
  });
});
