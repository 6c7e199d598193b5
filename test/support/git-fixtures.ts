import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

// Real git repositories for the working-copy tests, made in a temporary directory: a bare origin
// with history on main, a branch, Gerrit-style change refs that no branch contains, and refs
// that merge cleanly or conflict. Commits have fixed dates so hashes are the same on every run.

const run = promisify(execFile);

// The machine's own git config (signing, hooks, default branch) must not change the fixtures.
const env = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Fixture',
  GIT_AUTHOR_EMAIL: 'fixture@example.com',
  GIT_COMMITTER_NAME: 'Fixture',
  GIT_COMMITTER_EMAIL: 'fixture@example.com',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env });
  return stdout.trim();
}

/** Writes files (path → content) and commits them; returns the new commit's hash. */
async function commit(repo: string, message: string, files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
  await git(repo, 'add', '--all');
  await git(repo, 'commit', '--quiet', '-m', message);
  return git(repo, 'rev-parse', 'HEAD');
}

export interface GitOrigin {
  /** The bare repository's path, usable as a clone URL. */
  url: string;
  commits: {
    /** main~1: README "v1". */
    first: string;
    /** main: README "v2". */
    main: string;
    /** branch `feature` (from first): feature.txt. */
    feature: string;
    /** refs/changes/1/1 (from main): change.txt "change 1", on no branch. */
    change: string;
  };
  /** Adds a commit to main in the origin (someone pushed); returns its hash. */
  push(files: Record<string, string>): Promise<string>;
}

export interface GitFixtures {
  root: string;
  /** A bare origin named `name` with the history described in GitOrigin. */
  origin(name: string): Promise<GitOrigin>;
  dispose(): Promise<void>;
}

export async function createGitFixtures(): Promise<GitFixtures> {
  const root = await mkdtemp(join(tmpdir(), 'drydock-git-'));
  return {
    root,
    origin: (name) => makeOrigin(root, name),
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

async function makeOrigin(root: string, name: string): Promise<GitOrigin> {
  const work = join(root, `${name}.work`);
  const url = join(root, `${name}.git`);
  await mkdir(work);
  await git(work, 'init', '--quiet', '--initial-branch=main');
  const first = await commit(work, 'first', { README: 'v1\n', 'shared.txt': 'base\n' });
  const main = await commit(work, 'second', { README: 'v2\n' });

  await git(work, 'checkout', '--quiet', '-b', 'feature', first);
  const feature = await commit(work, 'feature', { 'feature.txt': 'feature\n' });

  // Change refs hang off main but no branch contains them: only an explicit fetch brings them.
  const change = async (ref: string, files: Record<string, string>) => {
    await git(work, 'checkout', '--quiet', '--detach', main);
    const hash = await commit(work, ref, files);
    await git(work, 'update-ref', ref, hash);
    return hash;
  };
  const change1 = await change('refs/changes/1/1', { 'change.txt': 'change 1\n' });
  await change('refs/changes/2/1', { 'merge-a.txt': 'a\n' });
  await change('refs/changes/3/1', { 'merge-b.txt': 'b\n', 'shared.txt': 'base\nfrom change 3\n' });
  // Both rewrite the same line: merging one after the other conflicts.
  await change('refs/changes/4/1', { 'shared.txt': 'four\n' });
  await change('refs/changes/5/1', { 'shared.txt': 'five\n' });
  await git(work, 'checkout', '--quiet', 'main');

  await run('git', ['clone', '--quiet', '--mirror', work, url], { env });
  return {
    url,
    commits: { first, main, feature, change: change1 },
    async push(files) {
      const hash = await commit(work, `update ${Object.keys(files).join(' ')}`, files);
      await git(work, 'push', '--quiet', url, 'main');
      return hash;
    },
  };
}

/** A file's content in a checked-out copy, or null when it is not there. */
export async function fileIn(dir: string, path: string): Promise<string | null> {
  return readFile(join(dir, path), 'utf8').catch(() => null);
}
