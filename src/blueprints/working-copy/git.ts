import type { RepositoryRequest } from './attributes.js';

// The git commands a working copy runs on its host, as argv lists (no shell anywhere). Every value
// that comes from a lease was validated (names.ts), and `--` still ends the options wherever git
// takes one, so that nothing from a lease can be read as an option.

/** What a failure is reported as: the step of the setup that failed. */
export type Phase = 'clone' | 'clean' | 'fetch' | 'checkout' | 'merge';

// The copy may have been used by an earlier lease's commands: its hooks and config must not run
// anything during our setup. `ext::` URLs run commands; git refuses them by default, and here always.
const git = [
  'git',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'protocol.ext.allow=never',
  '-c',
  'advice.detachedHead=false',
];

const identity = ['-c', 'user.name=Drydock', '-c', 'user.email=drydock@localhost', '-c', 'commit.gpgsign=false'];

/** Local refs the setup fetches into, out of the way of the user's branches. */
export const targetRef = 'refs/drydock/target';
export const mergeRef = (index: number) => `refs/drydock/merge/${index}`;

/** Prints the URL of an existing clone (exit 0), with no repository discovery above the directory. */
export const originUrl = (path: string) => [...git, `--git-dir=${path}/.git`, 'config', '--get', 'remote.origin.url'];

export const removeDirectory = (path: string) => ['rm', '-rf', '--', path];

export const clone = (url: string, path: string) => [...git, 'clone', '--quiet', '--', url, path];

// `-ff` also removes nested repositories a build left behind; the map's own are never nested.
export const clean = () => [
  [...git, 'reset', '--hard', '--quiet'],
  [...git, 'clean', '-ffdx', '--quiet'],
];

/** Refreshes every branch, so that commits on any of them can be checked out. */
export const fetchAll = () => [...git, 'fetch', '--prune', '--quiet', 'origin'];

const fullRef = (name: string) => (name.startsWith('refs/') ? name : `refs/heads/${name}`);

/** Where the checkout comes from, fetched into targetRef (a commit is checked out by hash instead). */
export function targetSource(request: RepositoryRequest): string | null {
  if (request.commit !== undefined) return null;
  if (request.branch !== undefined) return `refs/heads/${request.branch}`;
  return request.ref ?? 'HEAD';
}

/** Fetches the target and the refs to merge by name: a ref like refs/changes/1/1 is on no branch. */
export function fetchRefs(request: RepositoryRequest): string[] | null {
  const source = targetSource(request);
  const refspecs = [
    ...(source === null ? [] : [`+${source}:${targetRef}`]),
    ...request.merges.map((name, i) => `+${fullRef(name)}:${mergeRef(i)}`),
  ];
  return refspecs.length === 0 ? null : [...git, 'fetch', '--quiet', 'origin', '--', ...refspecs];
}

/** Exits 0 when the commit is already in the clone. */
export const hasCommit = (commit: string) => [...git, 'cat-file', '-e', '--', `${commit}^{commit}`];

/** A commit no branch points to any more, fetched by hash (servers may refuse: the checkout says so). */
export const fetchCommit = (commit: string) => [...git, 'fetch', '--quiet', 'origin', '--', commit];

export function checkout(request: RepositoryRequest): string[] {
  if (request.commit !== undefined) return [...git, 'checkout', '--quiet', '--detach', request.commit, '--'];
  if (request.branch !== undefined) return [...git, 'checkout', '--quiet', '-B', request.branch, targetRef, '--'];
  return [...git, 'checkout', '--quiet', '--detach', targetRef, '--'];
}

/** Squash-merges one fetched ref and commits the result (empty when it changed nothing). */
export const squashMerge = (index: number, name: string) => [
  [...git, 'merge', '--squash', '--no-stat', '--quiet', mergeRef(index)],
  [...git, ...identity, 'commit', '--quiet', '--no-verify', '--allow-empty', '-m', `Squash-merge ${name}`],
];

/** Prints the commit checked out, for the log. */
export const head = () => [...git, 'rev-parse', '--verify', 'HEAD'];
