import type { BlueprintRuntime } from '../implementation.js';
import type { WorkingCopyLeaseAttributes } from './attributes.js';
import * as git from './git.js';
import type { HostCommands } from './host-git.js';
import { repositoryPath } from './names.js';

// The two long jobs of a working copy: cloning it (once, when the resource activates) and
// preparing it for a lease (clean, fetch, check out, merge; on every lease). Both may run again
// after a crash, so each step is safe to repeat.

/** Clones every repository of the map into the copy, skipping clones an earlier attempt finished. */
export async function cloneCopy(
  host: HostCommands,
  runtime: BlueprintRuntime,
  copy: string,
  repositories: Record<string, string>,
): Promise<void> {
  for (const [directory, url] of Object.entries(repositories)) {
    const path = repositoryPath(copy, directory);
    const existing = await host.probe(git.originUrl(path));
    if (existing.exitCode === 0 && existing.stdout.trim() === url) {
      await runtime.log(`"${directory}" is already cloned`, { phase: 'clone', directory, url });
      continue;
    }
    // Whatever an interrupted attempt left there would make the clone refuse the directory.
    await host.run('clone', directory, git.removeDirectory(path));
    await runtime.log(`cloning ${url} into "${directory}"`, { phase: 'clone', directory, url });
    await host.run('clone', directory, git.clone(url, path));
  }
}

/**
 * Makes the copy what the lease asked for. Every repository of the copy is cleaned (a directory
 * the lease did not ask for must not carry the last lease's files either); the requested ones
 * are then fetched, checked out and merged.
 */
export async function prepareCopy(
  host: HostCommands,
  runtime: BlueprintRuntime,
  copy: string,
  allDirectories: readonly string[],
  request: WorkingCopyLeaseAttributes,
): Promise<void> {
  for (const directory of allDirectories) {
    const cwd = repositoryPath(copy, directory);
    for (const argv of git.clean()) await host.run('clean', directory, argv, cwd);
  }
  for (const [directory, wanted] of Object.entries(request.repositories)) {
    const cwd = repositoryPath(copy, directory);
    const target = wanted.commit ?? wanted.branch ?? wanted.ref ?? 'the remote HEAD';
    await runtime.log(`fetching "${directory}"`, { phase: 'fetch', directory, target });
    await host.run('fetch', directory, git.fetchAll(), cwd);
    const byName = git.fetchRefs(wanted);
    if (byName) await host.run('fetch', directory, byName, cwd);

    if (wanted.commit !== undefined && (await host.probe(git.hasCommit(wanted.commit), cwd)).exitCode !== 0)
      // A failure here shows as the checkout's: "this commit is not there" is what the user needs.
      await host.probe(git.fetchCommit(wanted.commit), cwd);
    await runtime.log(`checking out ${target} in "${directory}"`, { phase: 'checkout', directory, target });
    await host.run('checkout', directory, git.checkout(wanted), cwd);

    for (const [index, name] of wanted.merges.entries()) {
      await runtime.log(`squash-merging ${name} into "${directory}"`, { phase: 'merge', directory, ref: name });
      for (const argv of git.squashMerge(index, name)) await host.run('merge', directory, argv, cwd);
    }
    const head = await host.probe(git.head(), cwd);
    await runtime.log(`"${directory}" is ready`, { directory, commit: head.stdout.trim() });
  }
}
